// The config stream protocol against a real control plane in-process: authentication by mesh
// certificate, hello checks, push on change, resume by version, deregistration on bye and on expiry,
// health reports recorded as the Workload's status (and re-sent by the proxy's client on reconnect).

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { connect, constants, type ClientHttp2Session } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { resourceKey, type Workload, type WorkloadStatus } from "../../model/resources.ts";
import {
  encodeMessage,
  LineDecoder,
  MAX_SNAPSHOT_MESSAGE_BYTES,
  STREAM_PATH,
  type ControlPlaneMessage,
  type HelloMessage,
  type ResourceVersions,
} from "../../model/stream-protocol.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { applyDelta } from "../../model/snapshot-delta.ts";
import { Cell } from "../../proxy/agent/cell.ts";
import { SnapshotCell } from "../../proxy/agent/snapshot-cell.ts";
import { ConfigClient } from "../../proxy/agent/config-client.ts";
import type { TlsMaterial } from "../../proxy/types.ts";
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
  // As a proxy does: each snapshot or delta applied in order (`applied`) and ACKed (a delta that does
  // not apply is NACKed: one for a proxy that resumed by version alone, holding no content here).
  const applied: ProxySnapshot[] = [];
  let resources: ResourceVersions | undefined;
  const decoder = new LineDecoder(MAX_SNAPSHOT_MESSAGE_BYTES);
  const onMessage = (m: ControlPlaneMessage) => {
    messages.push(m);
    if (m.type === "snapshot") {
      applied.push(m.snapshot);
      resources = m.resources;
    } else if (m.type === "delta") {
      const r = applyDelta(applied.at(-1), resources, m);
      if (r.error !== undefined)
        return send({ type: "nack", nonce: m.nonce, version: m.version, error: r.error });
      applied.push(r.snapshot);
      resources = r.resources;
    } else return;
    send({ type: "ack", nonce: m.nonce, version: m.version });
  };
  stream.on("data", (c: Buffer) => decoder.push(c, (m) => onMessage(m as ControlPlaneMessage)));
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
    deltas: true,
    ...hello,
  });
  return { stream, messages, applied, send, closed, session };
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
  const pushed = await until(() => p.messages.find((m) => m.type === "delta"));
  assert.ok(pushed.type === "delta" && pushed.outbound["beta.default"], "a delta with beta's entry");
  assert.notEqual(pushed.version, first.version);
  assert.ok(p.applied.at(-1)?.outbound["beta.default"]);
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

/** The stored Workload and the lease it is stored under. */
async function stored(name: string): Promise<{ workload: Workload; lease: number } | undefined> {
  const kv = await store.get(resourceKey("Workload", "default", name));
  return kv && { workload: JSON.parse(kv.value) as Workload, lease: kv.lease };
}

test("a health report becomes the Workload's status, stored under the registration's lease", async () => {
  const p = await open("zeta");
  await until(() => p.messages.find((m) => m.type === "snapshot"));
  const registered = await stored("zeta-1");
  assert.ok(registered && registered.lease > 0);
  assert.equal(registered.workload.status, undefined, "no status until the proxy reports one");

  const before = Date.now();
  p.send({ type: "health", healthy: false, detail: "GET /healthz: 500" });
  const unhealthy = await until(async () => {
    const w = await stored("zeta-1");
    return w?.workload.status ? w : undefined;
  });
  const status = unhealthy.workload.status as unknown as WorkloadStatus;
  assert.equal(status.health, "Unhealthy");
  assert.equal(status.detail, "GET /healthz: 500");
  assert.ok(Date.parse(status.since!) >= before - 1000 && Date.parse(status.since!) <= Date.now());
  assert.equal(unhealthy.lease, registered.lease, "still under the registration's lease");
  assert.deepEqual(
    unhealthy.workload.spec,
    registered.workload.spec,
    "the rest of the Workload is unchanged",
  );

  p.send({ type: "health", healthy: true });
  const healthy = await until(async () => {
    const w = await stored("zeta-1");
    return (w?.workload.status as WorkloadStatus | undefined)?.health === "Healthy" ? w : undefined;
  });
  assert.equal(healthy.lease, registered.lease);
  assert.equal((healthy.workload.status as unknown as WorkloadStatus).detail, undefined);

  // The lease still ends the registration: bye removes the Workload, status and all.
  p.send({ type: "bye" });
  await until(async () => !(await stored("zeta-1")) || undefined);
});

test("a health report sent right behind hello is stored with the registration", async () => {
  const p = await open("eta");
  p.send({ type: "health", healthy: false, detail: "connect: connection refused" });
  const w = await until(async () => {
    const s = await stored("eta-1");
    return s?.workload.status ? s : undefined;
  });
  assert.equal((w.workload.status as unknown as WorkloadStatus).health, "Unhealthy");
  assert.ok(w.lease > 0);
  p.send({ type: "bye" });
});

test("malformed health messages, or health before hello, end the stream with bad_message", async () => {
  for (const bad of [
    { type: "health", healthy: "no" },
    { type: "health" },
    { type: "health", healthy: false, detail: 42 },
    { type: "health", healthy: false, detail: "x".repeat(5000) },
  ]) {
    const p = await open("theta");
    await until(() => p.messages.find((m) => m.type === "snapshot"));
    p.send(bad);
    await p.closed;
    const err = p.messages.find((m) => m.type === "error");
    assert.ok(err && err.type === "error" && err.code === "bad_message", JSON.stringify(bad));
  }

  const id = "spiffe://weft.local/ns/default/sa/iota";
  const cert = await cp.ca.issueWorkloadCertificate(id);
  const session = connect(cp.streamUrl, { ca: cp.ca.trustBundlePem, key: cert.keyPem, cert: cert.chainPem });
  sessions.push(session);
  session.on("error", () => {});
  const stream = session.request({ ":method": "POST", ":path": STREAM_PATH }, { endStream: false });
  stream.on("error", () => {});
  let text = "";
  stream.setEncoding("utf8");
  stream.on("data", (c: string) => (text += c));
  stream.on("end", () => stream.end());
  stream.write(encodeMessage({ type: "health", healthy: false }));
  await new Promise((r) => stream.on("close", r));
  assert.match(text, /"code":"bad_message".*health before hello/);
});

test("the proxy's config client reports health, and re-sends it after a reconnect re-registers the Workload", async (t) => {
  const id = "spiffe://weft.local/ns/default/sa/kappa";
  const cert = await cp.ca.issueWorkloadCertificate(id);
  const tls = new Cell<TlsMaterial>();
  tls.set({
    keyPem: cert.keyPem,
    certChainPem: cert.chainPem,
    trustBundlePem: cp.ca.trustBundlePem,
    spiffeId: id,
  });
  const client = new ConfigClient({
    snapshot: new SnapshotCell(),
    url: cp.streamUrl,
    ca: cp.ca.trustBundlePem,
    tls,
    log: () => {},
    hello: { workload: "kappa-1", address: "127.0.0.1", port: 15006, appPort: 8080 },
    minBackoffMs: 10,
    maxBackoffMs: 50,
  });
  t.after(() => client.stop(true));
  client.start();
  await until(() => client.snapshot.current());
  client.reportHealth(false, "GET /healthz: 503");
  const first = await until(async () => {
    const w = await stored("kappa-1");
    return w?.workload.status ? w : undefined;
  });
  assert.equal((first.workload.status as unknown as WorkloadStatus).health, "Unhealthy");

  // The control plane drops the stream; the client reconnects, and its new session registers the
  // Workload afresh (new lease, no status) — the client's re-sent report restores the status.
  const session = cp.stream.sessions().find((s) => s.workload === "kappa-1");
  assert.ok(session);
  session.abort(constants.NGHTTP2_CANCEL);
  const again = await until(async () => {
    const w = await stored("kappa-1");
    return w && w.lease !== first.lease && w.workload.status ? w : undefined;
  });
  const status = again.workload.status as unknown as WorkloadStatus;
  assert.equal(status.health, "Unhealthy");
  assert.equal(status.detail, "GET /healthz: 503");
});

test("an instance registers as not serving, joins the endpoints when it says so, and leaves them before it says bye", async () => {
  const endpointsSeenBy = (p: Awaited<ReturnType<typeof open>>) => {
    const last = p.applied.at(-1);
    return last ? (last.clusters["lambda.default"]?.endpoints.map((e) => e.workload) ?? []) : undefined;
  };
  const caller = await open("mu");
  const server = await open("lambda", { serving: false });
  const registered = await until(async () => (await stored("lambda-1")) ?? undefined);
  assert.deepEqual(registered.workload.status, { serving: false }, "registered, but not serving");
  await until(() => p(endpointsSeenBy(caller)?.length === 0 && caller.messages.length > 0));
  assert.deepEqual(endpointsSeenBy(caller), [], "a starting instance is nobody's endpoint");

  server.send({ type: "serving", serving: true });
  await until(() => p(endpointsSeenBy(caller)?.includes("lambda-1")));
  const serving = await stored("lambda-1");
  assert.equal(serving?.workload.status, undefined, "serving is the default: no status left");
  assert.equal(serving?.lease, registered.lease, "still under the registration's lease");

  // Health and serving are independent parts of the status.
  server.send({ type: "health", healthy: false, detail: "GET /healthz: 500" });
  server.send({ type: "serving", serving: false });
  await until(() => p(endpointsSeenBy(caller)?.length === 0));
  const draining = await until(async () => {
    const w = await stored("lambda-1");
    return (w?.workload.status as WorkloadStatus | undefined)?.serving === false &&
      (w?.workload.status as WorkloadStatus | undefined)?.health === "Unhealthy"
      ? w
      : undefined;
  });
  assert.equal((draining.workload.status as WorkloadStatus).detail, "GET /healthz: 500");
  server.send({ type: "bye" });
  await until(async () => !(await stored("lambda-1")) || undefined);
  caller.send({ type: "bye" });
});

test("a serving report right behind hello is stored with the registration", async () => {
  const s = await open("nu", { serving: false });
  s.send({ type: "serving", serving: true });
  s.send({ type: "health", healthy: false, detail: "connect: connection refused" });
  const w = await until(async () => {
    const r = await stored("nu-1");
    return r?.workload.status ? r : undefined;
  });
  assert.equal((w.workload.status as WorkloadStatus).serving, undefined, "serving: the later report won");
  assert.equal((w.workload.status as WorkloadStatus).health, "Unhealthy");
  s.send({ type: "bye" });
});

test("a malformed serving field ends the stream with a clear error", async () => {
  const bad = await open("xi");
  await until(() => bad.messages.find((m) => m.type === "snapshot"));
  bad.send({ type: "serving", serving: "yes" });
  await bad.closed;
  const err = bad.messages.find((m) => m.type === "error");
  assert.ok(
    err?.type === "error" && err.code === "bad_message" && /serving must be true or false/.test(err.message),
  );

  const hello = await open("omicron", { serving: 1 as unknown as boolean });
  await hello.closed;
  const refused = hello.messages.find((m) => m.type === "error");
  assert.ok(
    refused?.type === "error" && refused.code === "bad_hello" && /hello\.serving/.test(refused.message),
  );
  assert.equal(await stored("omicron-1"), undefined, "nothing registered");
});

/** `until` wants a value: true, or undefined to keep waiting. */
function p(ok: boolean | undefined): true | undefined {
  return ok ? true : undefined;
}
