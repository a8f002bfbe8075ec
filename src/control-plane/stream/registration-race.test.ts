// A proxy that says hello and goes away — at once, or at any point while the control plane is still
// storing its registration — must not leave its Workload registered: every path ends with the lease
// revoked or running out after the grace period (1 s here).

import assert from "node:assert/strict";
import { connect } from "node:http2";
import { test } from "node:test";
import { resourceKey, RESOURCE_PREFIX } from "../../model/resources.ts";
import { encodeMessage, STREAM_PATH } from "../../model/stream-protocol.ts";
import type { Store } from "../../store/store.ts";
import { startHarness } from "../../../test/helpers/stream-client.ts";

const WORKLOADS = `${RESOURCE_PREFIX}Workload/`;

/** Resolves once the store holds no Workload; rejects after `ms` naming the ones left. */
function noWorkloadsWithin(store: Store, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const live = new Set<string>();
    let watching = true;
    const finish = (err?: Error) => {
      if (!watching) return;
      watching = false;
      watcher.cancel();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const watcher = store.watch(WORKLOADS, (events) => {
      for (const e of events) {
        if (e.type === "put") live.add(e.kv.key);
        else live.delete(e.kv.key);
      }
      if (live.size === 0) finish();
    });
    const timer = setTimeout(
      () => finish(new Error(`still registered after ${ms} ms: ${[...live].join(", ")}`)),
      ms,
    );
    void store.range(WORKLOADS).then(({ kvs }) => {
      for (const kv of kvs) live.add(kv.key);
      if (live.size === 0) finish();
    });
  });
}

test("hello followed by a close at any moment never leaves a Workload registered", async (t) => {
  const grace = 1;
  const h = await startHarness(t, { graceSeconds: grace });
  const id = (i: number) => `race-${i % 4}`;
  const certs = await Promise.all(
    [0, 1, 2, 3].map((i) => h.cp.ca.issueWorkloadCertificate(`spiffe://weft.local/ns/default/sa/${id(i)}`)),
  );
  const N = 200;
  // Close delays from "in the same tick as hello" to a few ms later: a spread across the awaits of
  // the registration (lease grant, read of the existing key, put) under whatever load the machine has.
  const closes: Promise<void>[] = [];
  for (let i = 0; i < N; i++) {
    const cert = certs[i % 4];
    const session = connect(h.cp.streamUrl, {
      ca: h.cp.ca.trustBundlePem,
      key: cert.keyPem,
      cert: cert.chainPem,
    });
    session.on("error", () => {});
    const stream = session.request({ ":method": "POST", ":path": STREAM_PATH }, { endStream: false });
    stream.on("error", () => {});
    const hello = {
      type: "hello",
      workload: `${id(i)}-${i}`,
      address: "127.0.0.1",
      port: 15006,
      appPort: 8080,
    };
    closes.push(
      new Promise<void>((resolve) => {
        session.on("close", () => resolve());
        const close = () => session.destroy();
        stream.write(encodeMessage(hello as never), () => {
          const delay = i % 5 === 0 ? -1 : i % 25;
          if (delay < 0) close();
          else setTimeout(close, delay);
        });
      }),
    );
  }
  await Promise.all(closes);
  // Some were stored before their proxy went; all must go within the grace period (plus slack for
  // a loaded machine), and none may be kept alive.
  await noWorkloadsWithin(h.store, grace * 1000 + 3000);
  assert.equal(h.cp.stream.sessions().length, 0);
});

/** A store that holds each registration step's result until the test lets it through. */
function gatedStore(real: Store, step: "leaseGrant" | "get" | "put") {
  let reached!: () => void;
  const atGate = new Promise<void>((r) => (reached = r));
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const wrapped = new Proxy(real, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== step || typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        const isWorkload = step === "leaseGrant" || String(args[0]).startsWith(WORKLOADS);
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (isWorkload) {
          reached();
          await gate;
        }
        return result;
      };
    },
  });
  return { wrapped, atGate, open };
}

for (const step of ["leaseGrant", "get", "put"] as const) {
  test(`a proxy gone while its registration awaits ${step} is deregistered after the grace period`, async (t) => {
    let gated!: ReturnType<typeof gatedStore>;
    const h = await startHarness(t, {
      graceSeconds: 1,
      wrapStore: (s) => (gated = gatedStore(s, step)).wrapped,
    });
    const serverClosed = new Promise((r) => h.cp.stream.server.once("stream", (s) => s.once("close", r)));
    const p = await h.open("omega");
    await gated.atGate;
    const [session] = h.cp.stream.sessions();
    assert.ok(session, "the session is registering");
    assert.ok(session.registration instanceof Promise);
    p.session.destroy();
    // The control plane has seen the close; now the registration carries on.
    await serverClosed;
    gated.open();
    await session.registration;
    await noWorkloadsWithin(h.store, 3000);
    const kv = await h.store.get(resourceKey("Workload", "default", "omega-1"));
    assert.equal(kv, undefined);
  });
}
