// The outbound listener on demand, over real sockets: a request for a host the config lacks waits for
// it and is routed once it comes; a CONNECT tunnel waits the same way; a client leaving mid-wait
// leaves nothing behind (counted gone); a silent control plane gets the bound; IP literals and
// non-mesh names are answered at once, without subscribing.

import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test, type TestContext } from "node:test";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { Cell } from "../agent/cell.ts";
import { SnapshotCell } from "../agent/snapshot-cell.ts";
import { Subscriptions } from "../agent/subscriptions.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import type { TlsMaterial } from "../types.ts";
import { startApp } from "../testing/apps.ts";
import { request, viaProxy } from "../testing/client.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { createOutboundListener, type OutboundListener } from "./listener.ts";

/** A listener on demand whose "control plane" answers a subscribe with `answer` (or stays silent). */
async function setUp(t: TestContext, answer?: (names: string[]) => ProxySnapshot | undefined) {
  // As in the proxy: listeners swap a snapshot in before its plain subscribers (the subscriptions) see it.
  const config = new SnapshotCell();
  config.set(buildSnapshot({ version: "v0", services: [] }));
  const metrics = new ProxyMetrics();
  const subscribed: string[] = [];
  let listener: OutboundListener | undefined = undefined;
  const subs = new Subscriptions({
    config,
    send: {
      subscribe: (names) => {
        subscribed.push(...names);
        const s = answer?.(names);
        if (s) setImmediate(() => config.set(s));
      },
      unsubscribe: () => {},
    },
    lookup: (n) => listener?.table?.hosts.get(n),
    metrics,
    timeoutMs: 300,
  });
  listener = createOutboundListener({ config, tls: new Cell<TlsMaterial>(), metrics, subscriptions: subs });
  const { port } = await listener.listen(0, "127.0.0.1");
  t.after(async () => {
    subs.stop();
    await listener.close();
  });
  const count = (r: string) => metrics.discoveryRequests.series(r).value;
  return { port, subscribed, count, subs };
}

test("a request for a host the config lacks waits for it, then is routed; its body arrives whole", async (t) => {
  const app = await startApp("api");
  t.after(() => app.close());
  const { port, subscribed, count } = await setUp(t, () =>
    buildSnapshot({
      version: "v1",
      services: [{ name: "api", port: 8080, endpoints: [{ port: app.port }] }],
    }),
  );
  const body = "b".repeat(50_000);
  const r = await request(port, { method: "POST", path: "http://api:8080/x", body });
  assert.equal(r.status, 200, r.body);
  assert.equal(app.seen[0].body.toString(), body);
  assert.deepEqual(subscribed, ["api"]);
  assert.equal(count("found"), 1);
});

test("a CONNECT tunnel to a host the config lacks waits for it, then opens", async (t) => {
  const app = await startApp("api");
  t.after(() => app.close());
  const { port, subscribed } = await setUp(t, () =>
    buildSnapshot({ version: "v1", services: [{ name: "api", port: 80, endpoints: [{ port: app.port }] }] }),
  );
  const socket = net.connect(port, "127.0.0.1");
  t.after(() => socket.destroy());
  await once(socket, "connect");
  socket.write("CONNECT api:80 HTTP/1.1\r\nHost: api:80\r\n\r\nGET /in HTTP/1.1\r\nHost: api\r\n\r\n");
  let got = "";
  socket.setEncoding("utf8");
  await new Promise<void>((resolve) =>
    socket.on("data", (d: string) => {
      got += d;
      if (got.includes("api GET /in")) resolve();
    }),
  );
  assert.match(got, /^HTTP\/1\.1 200 Connection Established/);
  assert.deepEqual(subscribed, ["api"]);
});

test("a client leaving mid-wait is counted gone and leaves nothing waiting; a silent control plane gets the bound", async (t) => {
  const { port, count, subs } = await setUp(t);
  const socket = net.connect(port, "127.0.0.1");
  await once(socket, "connect");
  socket.write("GET http://slow/ HTTP/1.1\r\nHost: slow\r\n\r\n");
  await waitFor(() => subs.names().includes("slow"));
  socket.destroy();
  await waitFor(() => count("gone") === 1);

  const r = await viaProxy(port, "http://slow/");
  assert.equal(r.status, 404);
  assert.equal(r.headers["x-weft-error"], "no_route");
  assert.match(r.body, /did not send config for "slow" within 300 ms/);
  assert.equal(count("timeout"), 1);
});

test("an Upgrade (WebSocket) request whose client left mid-wait ends at the bound, answered into nothing", async (t) => {
  // Its connection is detached from the parser and paused (nothing is read before the 101), so the
  // client's leaving is seen only when the wait ends: bounded by the discovery timeout.
  const { port, count, subs } = await setUp(t);
  const socket = net.connect(port, "127.0.0.1");
  await once(socket, "connect");
  socket.write(
    "GET http://ws-later/ HTTP/1.1\r\nHost: ws-later\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  await waitFor(() => subs.names().includes("ws-later"));
  socket.destroy();
  await waitFor(() => count("timeout") + count("gone") === 1);
  // The listener still serves.
  assert.equal((await viaProxy(port, "http://127.0.0.1:9/")).headers["x-weft-error"], "no_route");
});

test("IP literals and names that cannot be mesh names are answered at once, without subscribing", async (t) => {
  const { port, subscribed } = await setUp(t);
  for (const host of ["127.0.0.1:9", "[::1]:80", "a.b.c.d.e.f", "under_score", `${"x".repeat(300)}`]) {
    const r = await request(port, { path: "/", headers: { host } });
    assert.equal(r.status, 404, host);
    assert.equal(r.headers["x-weft-error"], "no_route", host);
  }
  assert.deepEqual(subscribed, []);
});

async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}
