// Delta pushes and resume, against a real control plane in-process: a change to one service reaches a
// proxy as a delta carrying only that entry, which the proxy's real config client applies, runs and
// ACKs, ending with exactly the control plane's snapshot; a proxy that reconnects resumes from what
// it runs — nothing sent when nothing changed, one delta with only what changed meanwhile when its
// hello says which entry versions it holds, the whole snapshot when it says only its version.

import assert from "node:assert/strict";
import { constants } from "node:http2";
import { test } from "node:test";
import { resourceKey } from "../../model/resources.ts";
import { applyDelta } from "../../model/snapshot-delta.ts";
import type { DeltaMessage, ResourceVersions, SnapshotMessage } from "../../model/stream-protocol.ts";
import { Cell } from "../../proxy/agent/cell.ts";
import { ConfigClient } from "../../proxy/agent/config-client.ts";
import { SnapshotCell } from "../../proxy/agent/snapshot-cell.ts";
import type { TlsMaterial } from "../../proxy/types.ts";
import { waitUntil } from "../../../test/helpers/mesh.ts";
import { serviceJson, startHarness, type Harness } from "../../../test/helpers/stream-client.ts";

const SERVICES = 40;

const workload = (svc: string, port: number) =>
  JSON.stringify({
    apiVersion: "weft.dev/v1alpha1",
    kind: "Workload",
    metadata: { name: `${svc}-static`, namespace: "default" },
    spec: { service: svc, address: "127.0.0.1", port },
  });

async function meshOf(h: Harness): Promise<void> {
  await h.store.txn({
    success: Array.from({ length: SERVICES }, (_, i) => ({
      type: "put" as const,
      key: resourceKey("Service", "default", `svc-${i}`),
      value: serviceJson(`svc-${i}`),
    })),
  });
}

/** An endpoint joins `svc`: its cluster changes, nothing else does. */
const join = (h: Harness, svc: string, port: number) =>
  h.store.put(resourceKey("Workload", "default", `${svc}-static`), workload(svc, port));

async function realClient(t: import("node:test").TestContext, h: Harness, svc: string) {
  const id = `spiffe://weft.local/ns/default/sa/${svc}`;
  const cert = await h.cp.ca.issueWorkloadCertificate(id);
  const tls = new Cell<TlsMaterial>();
  tls.set({
    keyPem: cert.keyPem,
    certChainPem: cert.chainPem,
    trustBundlePem: h.cp.ca.trustBundlePem,
    spiffeId: id,
  });
  const client = new ConfigClient({
    snapshot: new SnapshotCell(),
    url: h.cp.streamUrl,
    ca: h.cp.ca.trustBundlePem,
    tls,
    log: () => {},
    hello: { workload: `${svc}-1`, address: "127.0.0.1", port: 15006, appPort: 8080 },
    minBackoffMs: 10,
    maxBackoffMs: 50,
  });
  t.after(() => client.stop(true));
  return client;
}

test("delta push: a change to one service sends only its entry; the proxy runs and ACKs the control plane's snapshot", async (t) => {
  const h = await startHarness(t, { debounceMs: 2 });
  await meshOf(h);
  const client = await realClient(t, h, "web");
  client.start();
  const key = "default/web-1";
  await waitUntil(() => client.snapshot.current() !== undefined, 10_000, "the first snapshot");
  const session = h.cp.stream.sessions().find((s) => s.workload === "web-1")!;
  await waitUntil(() => session.ackedVersion === client.snapshot.current()?.version, 5000, "the first ACK");
  const whole = session.pushes;
  assert.deepEqual([whole.sent, whole.deltas], [1, 0], "first push: whole");

  await join(h, "svc-7", 30_007);
  await waitUntil(
    () => client.snapshot.current()?.clusters["svc-7.default"]?.endpoints.length === 1,
    10_000,
    "the change applied",
  );
  const after = session.pushes;
  assert.deepEqual([after.sent, after.deltas], [2, 1], "the change went as a delta");
  const deltaBytes = after.bytes - whole.bytes;
  assert.ok(deltaBytes * 10 < whole.bytes, `a delta of ${deltaBytes} bytes against ${whole.bytes} whole`);
  const compiled = h.cp.snapshots.get(key)!;
  assert.deepEqual(client.snapshot.current(), compiled, "what runs is the control plane's snapshot");
  await waitUntil(() => session.ackedVersion === compiled.version, 5000, "the delta ACKed");

  // Its content: a raw proxy of another service sees the same change as one cluster entry.
  const p = await h.open("shop");
  const first = (await p.next((m) => m.type === "snapshot")) as SnapshotMessage;
  p.send({ type: "ack", nonce: first.nonce, version: first.version });
  await waitUntil(() => h.cp.stream.sessions().some((s) => s.ackedVersion === first.version), 5000, "ACK");
  await join(h, "svc-9", 30_009);
  const d = (await p.next((m) => m.type === "delta")) as DeltaMessage;
  assert.equal(d.base, first.version);
  assert.deepEqual(Object.keys(d.outbound), []);
  assert.deepEqual(Object.keys(d.clusters), ["svc-9.default"]);
  assert.deepEqual(d.removed, { outbound: [], clusters: [] });
  const applied = applyDelta(first.snapshot, first.resources, d);
  assert.ok(applied.error === undefined, applied.error);
  assert.deepEqual(applied.snapshot, h.cp.snapshots.get("default/shop-1"));
});

test("resume after reconnect: nothing sent when nothing changed, one delta with only what changed meanwhile", async (t) => {
  const h = await startHarness(t, { debounceMs: 2 });
  await meshOf(h);

  // The real client: its stream dropped by the control plane, it reconnects with what it runs.
  const client = await realClient(t, h, "web");
  client.start();
  await waitUntil(() => client.snapshot.current() !== undefined, 10_000, "the first snapshot");
  const running = client.snapshot.current()!;
  const old = h.cp.stream.sessions().find((s) => s.workload === "web-1")!;
  old.abort(constants.NGHTTP2_CANCEL);
  await waitUntil(
    () => h.cp.stream.sessions().some((s) => s !== old && s.workload === "web-1"),
    10_000,
    "the new session",
  );
  const resumed = h.cp.stream.sessions().find((s) => s !== old && s.workload === "web-1")!;
  await resumed.started;
  assert.equal(resumed.pushes.sent, 0, "the version it runs is the newest: nothing sent");
  assert.equal(client.snapshot.current(), running);
  // The next change goes as a delta against what it resumed with.
  await join(h, "svc-3", 30_003);
  await waitUntil(() => resumed.pushes.sent === 1, 10_000, "the push");
  assert.equal(resumed.pushes.deltas, 1);

  // A raw proxy, to see what a resuming hello gets: it runs v1 (with its entry versions), drops.
  const p1 = await h.open("shop");
  const v1 = (await p1.next((m) => m.type === "snapshot")) as SnapshotMessage;
  p1.session.destroy();
  await p1.closed;
  // Meanwhile one service changes (the proxy is away).
  await join(h, "svc-11", 30_011);
  const newest = () => h.cp.snapshots.get("default/shop-1");
  // (The connected client sees it: the mesh state has it.)
  await waitUntil(
    () => client.snapshot.current()?.clusters["svc-11.default"]?.endpoints.length === 1,
    10_000,
    "the change in the mesh",
  );

  const resume = async (hello: { version: string; resources?: ResourceVersions }) => {
    const p = await h.open("shop", hello);
    const m = await p.next((x) => x.type !== "error");
    p.session.destroy();
    await p.closed;
    return m;
  };
  const d = (await resume({ version: v1.version, resources: v1.resources })) as DeltaMessage;
  assert.equal(d.type, "delta", "with entry versions: a delta");
  assert.equal(d.base, v1.version);
  assert.deepEqual([Object.keys(d.outbound), Object.keys(d.clusters)], [[], ["svc-11.default"]]);
  const applied = applyDelta(v1.snapshot, v1.resources, d);
  assert.ok(applied.error === undefined, applied.error);
  assert.deepEqual(applied.snapshot, newest());
  assert.ok(JSON.stringify(d).length * 10 < JSON.stringify(v1).length, "a fraction of the whole");

  const w = (await resume({ version: v1.version })) as SnapshotMessage;
  assert.equal(w.type, "snapshot", "with its version alone: the whole snapshot");
  assert.equal(w.version, newest()!.version);

  // Resumed with the newest version: nothing is sent.
  const earlier = new Set(h.cp.stream.sessions());
  const p3 = await h.open("shop", { version: newest()!.version, resources: w.resources });
  const fresh = () => h.cp.stream.sessions().find((s) => !earlier.has(s) && s.workload === "shop-1");
  await waitUntil(() => fresh() !== undefined, 5000, "registered");
  const s3 = fresh()!;
  await s3.started;
  assert.equal(s3.pushes.sent, 0);
  assert.equal(p3.messages.length, 0);
  // Its next push is a delta from the snapshot it resumed with (the cache's, shared).
  await join(h, "svc-12", 30_012);
  const next = (await p3.next((m) => m.type !== "error")) as DeltaMessage;
  assert.equal(next.type, "delta");
  assert.deepEqual(Object.keys(next.clusters), ["svc-12.default"]);
  const applied3 = applyDelta(w.snapshot, w.resources, next);
  assert.ok(applied3.error === undefined, applied3.error);
  assert.deepEqual(applied3.snapshot, newest());
});

test("a proxy whose hello does not take deltas (one that predates them) gets every push whole", async (t) => {
  const h = await startHarness(t, { debounceMs: 2 });
  await meshOf(h);
  const p = await h.open("shop", { deltas: undefined });
  const first = (await p.next((m) => m.type === "snapshot")) as SnapshotMessage;
  p.send({ type: "ack", nonce: first.nonce, version: first.version });
  await waitUntil(() => h.cp.stream.sessions().some((s) => s.ackedVersion === first.version), 5000, "ACK");
  await join(h, "svc-5", 30_005);
  const second = await p.next((m) => m.type !== "error" && m.nonce > first.nonce);
  assert.equal(second.type, "snapshot");
  assert.equal(second.type === "snapshot" && second.snapshot.clusters["svc-5.default"]?.endpoints.length, 1);
});
