// Draining an idle sidecar is prompt: idle keep-alive connections, idle h2 sessions (app-side h2c and
// the mTLS session to the peer sidecar) and connections that never said what they speak close at
// once; only requests in flight are waited for. The bench found a client sidecar that took the whole
// drain timeout (5 s) to exit because a connection that half-closed without a byte sat in the h2c
// sniffer.

import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { startApp } from "../testing/apps.ts";
import { createTestCa } from "../testing/certs.ts";
import { viaProxy } from "../testing/client.ts";
import { startSidecarPair } from "../testing/sidecar-pair.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());

/** What settles first: `p`, or a `ms` guard (the value "late"); the guard's timer is cleared. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "late"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function connect(port: number): Promise<net.Socket> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await once(s, "connect");
  return s;
}

test("an idle sidecar pair drains at once: keep-alive, h2c and mTLS h2 sessions, silent and half-spoken connections", async (t) => {
  const app = await startApp("reviews");
  t.after(() => app.close());
  const { inbound, outbound } = await startSidecarPair(t, ca, app.port);

  // An idle keep-alive HTTP/1.1 client; its request opened the h2 session between the sidecars.
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  assert.equal((await viaProxy(outbound.port, "http://reviews:9080/a", { agent })).status, 200);
  // An idle h2c client session.
  const h2 = http2.connect(`http://127.0.0.1:${outbound.port}`);
  h2.on("error", () => {});
  t.after(() => h2.destroy());
  const s = h2.request({ ":path": "/b", ":authority": "reviews:9080" });
  s.end();
  s.resume();
  await once(s, "close");
  // Connected, silent; stopped inside the h2 preface: neither is handed to an edge yet.
  const silent = await connect(outbound.port);
  const partial = await connect(outbound.port);
  partial.write("PRI * HTTP/2");
  const silentInbound = await connect(inbound.port);
  t.after(() => [silent, partial, silentInbound].forEach((c) => c.destroy()));
  const closed = Promise.all([silent, partial, silentInbound, h2].map((c) => once(c, "close")));

  // Drain timeouts far longer than the guard: only an immediate close passes.
  const drained = Promise.all([outbound.listener.drain(60_000), inbound.listener.drain(60_000)]);
  assert.notEqual(await within(drained, 3_000), "late", "drain waited although nothing was in flight");
  assert.notEqual(await within(closed, 3_000), "late", "a connection outlived the drain");
});

test("a client that ends its side before its first byte is closed at once, not kept half-open", async (t) => {
  const app = await startApp("reviews");
  t.after(() => app.close());
  const { outbound } = await startSidecarPair(t, ca, app.port);
  const c = await connect(outbound.port);
  t.after(() => c.destroy());
  c.end();
  assert.notEqual(await within(once(c, "close"), 3_000), "late", "the listener kept the connection open");
});

test("drain still waits for a request in flight across the pair, then closes", async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const app = await startApp("slow", undefined, {
    stream: (req, res) => {
      req.resume();
      void gate.then(() => res.end("late"));
    },
  });
  t.after(() => app.close());
  const { outbound } = await startSidecarPair(t, ca, app.port);
  const inflight = viaProxy(outbound.port, "http://reviews:9080/slow");
  while (app.started.length === 0) await new Promise((r) => setImmediate(r));
  let done = false;
  const drained = outbound.listener.drain(60_000).then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, "drained with a request in flight");
  release();
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body, "late");
  await drained;
});
