// A registration lives only while its proxy proves it is alive by answering the control plane's
// HTTP/2 pings. A proxy that stops answering while its TCP connection stays open — frozen by SIGSTOP,
// or partitioned (here: a relay that stops forwarding) — is deregistered within the grace period.

import assert from "node:assert/strict";
import { createConnection, createServer, type AddressInfo, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { RESOURCE_PREFIX } from "../../model/resources.ts";
import { waitUntil } from "../../../test/helpers/mesh.ts";
import { startHarness } from "../../../test/helpers/stream-client.ts";

/** A TCP relay to `port` whose connections can be frozen: nothing more goes through in either direction. */
async function relay(t: TestContext, port: number) {
  const pairs: [Socket, Socket][] = [];
  const server = createServer((down) => {
    const up = createConnection(port, "127.0.0.1");
    down.pipe(up);
    up.pipe(down);
    down.on("error", () => up.destroy());
    up.on("error", () => down.destroy());
    pairs.push([down, up]);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const close = () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    server.close();
  };
  t.after(close);
  return {
    close,
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    freeze() {
      for (const [down, up] of pairs) {
        down.unpipe(up);
        up.unpipe(down);
        down.pause();
        up.pause();
      }
    },
  };
}

test("a proxy that stops answering pings is deregistered within the grace period, its stream ended", async (t) => {
  const grace = 1;
  const h = await startHarness(t, { graceSeconds: grace });
  const r = await relay(t, Number(new URL(h.cp.streamUrl).port));
  const p = await h.open("frozen", {}, { url: r.url });
  await p.next((m) => m.type === "snapshot");

  // Alive: pings are answered, so the lease is refreshed well past its first TTL.
  const deleted = new Promise<number>((resolve) => {
    const w = h.store.watch(`${RESOURCE_PREFIX}Workload/`, (events) => {
      if (events.some((e) => e.type === "delete")) {
        w.cancel();
        resolve(Date.now());
      }
    });
  });
  const alive = await Promise.race([
    deleted.then(() => false),
    new Promise((r) => setTimeout(() => r(true), 2.5 * grace * 1000)),
  ]);
  assert.ok(alive, "a proxy that answers stays registered beyond the grace period");
  assert.ok(await h.workload("frozen-1"));

  const frozenAt = Date.now();
  r.freeze();
  const gone = await Promise.race([
    deleted,
    new Promise<number>((_, reject) =>
      setTimeout(
        () => reject(new Error("still registered 3 grace periods after the freeze")),
        3 * grace * 1000,
      ),
    ),
  ]);
  const took = gone - frozenAt;
  // The lease was last refreshed by a ping answered before the freeze: at most one grace period ago
  // (plus slack for timers and the revoke's write on a loaded machine).
  assert.ok(
    took <= grace * 1000 + 600,
    `deregistered ${took} ms after the freeze (bound: ${grace * 1000} ms)`,
  );
  assert.equal(await h.workload("frozen-1"), undefined);
  // The control plane also gives up on the stream itself (no answer within the grace period).
  await waitUntil(() => h.cp.stream.sessions().length === 0, 3000, "the unresponsive proxy's session to end");
  // Cut the relay before the control plane closes: it would wait for the frozen connection.
  r.close();
});

test("a control plane that stalls longer than the grace period does not drop its proxies for it", async (t) => {
  // Two seconds of grace, so that a ping answer slowed by a loaded machine (up to 2/3 of it) still
  // refreshes the lease in time before the stall.
  const h = await startHarness(t, { graceSeconds: 2 });
  const p = await h.open("patient");
  await p.next((m) => m.type === "snapshot");
  // The control plane's event loop is blocked (a huge apply, a long GC) for 1.5 grace periods.
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    // busy: no timer, no I/O, no ping answer gets through
  }
  // A ping round trip through the control plane: by the time it answers, every timer that came due
  // during the stall (its liveness tick, the lease's expiry) has run.
  await new Promise<void>((r) => p.session.ping(() => r()));
  assert.ok(await h.workload("patient-1"), "still registered");
  assert.deepEqual(
    p.messages.filter((m) => m.type === "error"),
    [],
  );
});
