// The config stream protocol against a real control plane in-process: authentication by mesh
// certificate, hello checks, push on change, resume by version, deregistration on bye and on expiry.

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { connect, type ClientHttp2Session } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { resourceKey } from "../../model/resources.ts";
import {
  encodeMessage,
  LineDecoder,
  STREAM_PATH,
  type ControlPlaneMessage,
  type HelloMessage,
} from "../../model/stream-protocol.ts";
import { startControlPlane, type ControlPlane } from "../control-plane.ts";
import { openEmbeddedStore } from "../../store/embedded/index.ts";
import type { Store } from "../../store/store.ts";

let cp: ControlPlane;
let store: Store;
const sessions: ClientHttp2Session[] = [];

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-stream-"));
  store = await openEmbeddedStore(join(dir, "store"));
  cp = await startControlPlane({
    dataDir: dir,
    listen: "127.0.0.1:0",
    streamListen: "127.0.0.1:0",
    graceSeconds: 1,
    debounceMs: 5,
    store,
  });
});
after(async () => {
  for (const s of sessions) s.destroy();
  await cp.close();
  await store.close();
});

async function open(service: string, hello: Partial<HelloMessage> = {}) {
  const id = `spiffe://weft.local/ns/default/sa/${service}`;
  const cert = await cp.ca.issueWorkloadCertificate(id);
  const session = connect(cp.streamUrl, { ca: cp.ca.trustBundlePem, key: cert.keyPem, cert: cert.chainPem });
  sessions.push(session);
  session.on("error", () => {});
  const stream = session.request({ ":method": "POST", ":path": STREAM_PATH }, { endStream: false });
  const messages: ControlPlaneMessage[] = [];
  const decoder = new LineDecoder();
  stream.setEncoding("utf8");
  stream.on("data", (c: string) => decoder.push(c, (m) => messages.push(m as ControlPlaneMessage)));
  stream.on("error", () => {});
  stream.on("end", () => stream.end());
  const closed = new Promise<void>((r) => stream.on("close", () => r()));
  const send = (m: object) => stream.write(encodeMessage(m as never));
  send({
    type: "hello",
    workload: `${service}-1`,
    address: "127.0.0.1",
    port: 15006,
    appPort: 8080,
    ...hello,
  });
  return { stream, messages, send, closed, session };
}

async function until<T>(fn: () => T | undefined | Promise<T | undefined>, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("a proxy registers its workload and receives its snapshot; changes are pushed", async () => {
  const p = await open("alpha", { labels: { version: "v1" } });
  const first = await until(() => p.messages.find((m) => m.type === "snapshot"));
  assert.equal(first.type, "snapshot");
  if (first.type !== "snapshot") return;
  assert.equal(first.snapshot.proxy.identity, "spiffe://weft.local/ns/default/sa/alpha");
  assert.equal(first.snapshot.inbound.appPort, 8080);
  const kv = await store.get(resourceKey("Workload", "default", "alpha-1"));
  assert.ok(kv && kv.lease > 0, "registered under a lease");
  p.send({ type: "ack", nonce: first.nonce, version: first.version });
  const b = await open("beta");
  // alpha hears about beta's arrival.
  const pushed = await until(() =>
    p.messages.find((m) => m.type === "snapshot" && m.snapshot.outbound["beta.default"]),
  );
  assert.notEqual((pushed as { version: string }).version, first.version);
  b.send({ type: "bye" });
  await until(async () => !(await store.get(resourceKey("Workload", "default", "beta-1"))) || undefined);
});

test("a proxy that reconnects with the version it runs is not sent it again", async () => {
  const p = await open("gamma");
  const first = await until(() => p.messages.find((m) => m.type === "snapshot"));
  p.session.destroy();
  const again = await open("gamma", { version: (first as { version: string }).version });
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(again.messages.filter((m) => m.type === "snapshot").length, 0);
});

test("hello is checked: the workload name must carry the certificate's service", async () => {
  const p = await open("delta", { workload: "alpha-1" });
  await p.closed;
  const err = p.messages.find((m) => m.type === "error");
  assert.ok(err && err.type === "error" && err.code === "bad_hello", JSON.stringify(p.messages));
  const bad = await open("delta", { address: "not-an-ip" });
  await bad.closed;
  assert.ok(bad.messages.some((m) => m.type === "error"));
});

test("a stream without a mesh certificate is refused at the TLS handshake", async () => {
  const session = connect(cp.streamUrl, { ca: cp.ca.trustBundlePem });
  const err = await new Promise<Error | undefined>((resolve) => {
    session.on("error", resolve);
    const s = session.request({ ":method": "POST", ":path": STREAM_PATH });
    s.on("error", resolve);
    s.on("response", () => resolve(undefined));
  });
  session.destroy();
  assert.ok(err, "no response without a client certificate");
});

test("a proxy that disappears is deregistered after the grace period", async () => {
  const p = await open("epsilon");
  await until(() => p.messages.find((m) => m.type === "snapshot"));
  assert.ok(await store.get(resourceKey("Workload", "default", "epsilon-1")));
  const lostAt = Date.now();
  p.session.destroy();
  await until(
    async () => !(await store.get(resourceKey("Workload", "default", "epsilon-1"))) || undefined,
    4000,
  );
  assert.ok(Date.now() - lostAt >= 500, "kept for the grace period, not dropped at once");
});

test("closing the control plane does not wait on connected proxies, even one that keeps its connection open", async () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-stream-close-"));
  const own = await startControlPlane({
    dataDir: dir,
    listen: "127.0.0.1:0",
    streamListen: "127.0.0.1:0",
    graceSeconds: 1,
    debounceMs: 5,
  });
  const cert = await own.ca.issueWorkloadCertificate("spiffe://weft.local/ns/default/sa/stubborn");
  const session = connect(own.streamUrl, {
    ca: own.ca.trustBundlePem,
    key: cert.keyPem,
    cert: cert.chainPem,
  });
  session.on("error", () => {});
  const stream = session.request({ ":method": "POST", ":path": STREAM_PATH }, { endStream: false });
  stream.on("error", () => {});
  stream.write(
    encodeMessage({ type: "hello", workload: "stubborn-1", address: "127.0.0.1", port: 15006 } as never),
  );
  await new Promise((r) => stream.once("data", r));
  // A client that never closes its session and immediately asks again on it when cancelled.
  stream.on("close", () => {
    if (!session.closed && !session.destroyed) {
      const again = session.request({ ":method": "POST", ":path": STREAM_PATH }, { endStream: false });
      again.on("error", () => {});
    }
  });
  const sessionEnded = new Promise((r) => session.once("close", () => r(true)));
  const started = Date.now();
  await own.close();
  const took = Date.now() - started;
  assert.ok(took < 3000, `close took ${took} ms`);
  const goneAway = await Promise.race([sessionEnded, new Promise((r) => setTimeout(() => r(false), 3000))]);
  assert.ok(goneAway, "the proxy's connection was ended by the control plane");
  session.destroy();
});
