// Deltas between compiled snapshots: a change sends only the entries whose piece hash changed (and the
// keys removed), applying it to the old snapshot gives exactly the new one, proxies that share views
// share one encoding of the delta, and a proxy's own account of what it holds (its hello) is diffed
// the same way. The whole snapshot goes when nothing is known, or when it is the smaller.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { AnyResource } from "../../model/resources.ts";
import { applyDelta } from "../../model/snapshot-delta.ts";
import type { DeltaMessage, ResourceVersions, SnapshotMessage } from "../../model/stream-protocol.ts";
import { compileSnapshot, prepareState, type MeshState } from "../compile/compile.ts";
import { DeltaEncoder, type Encoded } from "./delta-encoder.ts";

/** The message as one line (a whole snapshot comes in parts). */
const lineOf = (e: Encoded): string => e.parts.map((p) => p.toString()).join("");

const service = (name: string, port = 8080): AnyResource =>
  ({
    apiVersion: "weft.dev/v1alpha1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: { ports: [{ port, protocol: "http" }] },
  }) as AnyResource;

const workload = (svc: string, n: number, port: number): AnyResource =>
  ({
    apiVersion: "weft.dev/v1alpha1",
    kind: "Workload",
    metadata: { name: `${svc}-${n}`, namespace: "default" },
    spec: { service: svc, address: "127.0.0.1", port },
  }) as AnyResource;

function stateOf(resources: AnyResource[]): MeshState {
  const of = <T>(k: string) => resources.filter((r) => r.kind === k) as T[];
  return {
    services: of("Service"),
    workloads: of("Workload"),
    routes: [],
    trafficPolicies: [],
    faultInjections: [],
    referenceGrants: [],
  };
}

/** A mesh of `n` services with one endpoint each, kept in one PreparedState as the control plane does. */
function mesh(n: number) {
  const resources: AnyResource[] = [];
  for (let i = 0; i < n; i++) resources.push(service(`svc-${i}`), workload(`svc-${i}`, 1, 20_000 + i));
  const prepared = prepareState(stateOf(resources));
  const compile = (name: string) =>
    compileSnapshot(
      stateOf(resources),
      { workload: resources.find((r) => r.metadata.name === name) as never, appPort: 8080 },
      prepared,
    );
  const change = (r: AnyResource, old?: AnyResource) => {
    if (old) resources[resources.indexOf(old)] = r;
    else resources.push(r);
    prepared.apply([{ old, new: r }]);
  };
  const remove = (r: AnyResource) => {
    resources.splice(resources.indexOf(r), 1);
    prepared.apply([{ old: r }]);
  };
  return { resources, compile, change, remove };
}

test("a change to one service: a delta with only its entries, that applies to the exact new snapshot", () => {
  const m = mesh(20);
  const enc = new DeltaEncoder();
  const before = m.compile("svc-0-1");
  const first = JSON.parse(lineOf(enc.encode(1, before, undefined))) as SnapshotMessage;
  assert.equal(first.type, "snapshot", "nothing known: whole");
  assert.deepEqual(Object.keys(first.resources!.outbound).length, 20);

  // svc-3 gets a second endpoint: its cluster changes, nothing else.
  m.change(workload("svc-3", 2, 30_000));
  const after = m.compile("svc-0-1");
  const out = enc.encode(2, after, enc.held(before));
  assert.equal(out.delta, true);
  const delta = JSON.parse(lineOf(out)) as DeltaMessage;
  assert.equal(delta.base, before.version);
  assert.equal(delta.version, after.version);
  assert.deepEqual(Object.keys(delta.outbound), []);
  assert.deepEqual(Object.keys(delta.clusters), ["svc-3.default"]);
  assert.deepEqual(delta.removed, { outbound: [], clusters: [] });
  assert.deepEqual(Object.keys(delta.resources.clusters), ["svc-3.default"]);
  assert.ok(lineOf(out).length < JSON.stringify(first).length / 5, "a fraction of the whole");

  // Applied to the old snapshot (as received, with its versions): exactly the new one.
  const applied = applyDelta(first.snapshot, first.resources, delta);
  assert.ok(applied.error === undefined, applied.error);
  assert.deepEqual(applied.snapshot, after);
  const whole = JSON.parse(lineOf(enc.encode(3, after, undefined))) as SnapshotMessage;
  assert.deepEqual(applied.resources, whole.resources, "the versions a whole snapshot would carry");
});

test("a service removed and one added: removed by key, added whole", () => {
  const m = mesh(5);
  const enc = new DeltaEncoder();
  const before = m.compile("svc-0-1");
  m.remove(m.resources.find((r) => r.metadata.name === "svc-4-1")!);
  m.remove(m.resources.find((r) => r.metadata.name === "svc-4")!);
  m.change(service("fresh"));
  const after = m.compile("svc-0-1");
  const delta = JSON.parse(lineOf(enc.encode(2, after, enc.held(before)))) as DeltaMessage;
  assert.deepEqual(delta.removed, { outbound: ["svc-4.default"], clusters: ["svc-4.default"] });
  assert.deepEqual(Object.keys(delta.outbound), ["fresh.default"]);
  const whole = JSON.parse(lineOf(enc.encode(1, before, undefined))) as SnapshotMessage;
  const applied = applyDelta(whole.snapshot, whole.resources, delta);
  assert.equal(applied.error, undefined);
  assert.deepEqual(applied.error === undefined && applied.snapshot, after);
});

test("proxies that share a view share one encoding of each delta", () => {
  const m = mesh(10);
  const enc = new DeltaEncoder();
  const proxies = ["svc-0-1", "svc-1-1", "svc-2-1", "svc-3-1"];
  const before = proxies.map((p) => m.compile(p));
  m.change(workload("svc-7", 2, 30_000));
  const after = proxies.map((p) => m.compile(p));
  const lines = after.map((s, i) => enc.encode(i, s, enc.held(before[i])));
  assert.ok(lines.every((l) => l.delta));
  assert.equal(enc.encoded, 1, "one diff and encoding for the four proxies' identical move");
  // Each line still carries its own proxy's head and version.
  const heads = lines.map((l) => (JSON.parse(lineOf(l)) as DeltaMessage).head.proxy.workload);
  assert.deepEqual(heads, proxies);
  // A second change: one more encoding, not four.
  m.change(workload("svc-8", 2, 30_001));
  for (const [i, s] of after.entries()) enc.encode(9, m.compile(proxies[i]), enc.held(s));
  assert.equal(enc.encoded, 2);
});

test("the whole snapshot goes when the delta would be bigger", () => {
  const m = mesh(3);
  const enc = new DeltaEncoder();
  const before = m.compile("svc-0-1");
  // Every entry changes (each service a new port, each endpoint a new port): the delta would be the
  // whole entries plus its removed lists.
  for (let i = 0; i < 3; i++) {
    const find = (kind: string, name: string) =>
      m.resources.find((r) => r.kind === kind && r.metadata.name === name);
    m.change(service(`svc-${i}`, 9000 + i), find("Service", `svc-${i}`));
    m.change(workload(`svc-${i}`, 1, 40_000 + i), find("Workload", `svc-${i}-1`));
  }
  const after = m.compile("svc-0-1");
  const out = enc.encode(2, after, enc.held(before));
  assert.equal(out.delta, false);
  assert.equal((JSON.parse(lineOf(out)) as SnapshotMessage).snapshot.version, after.version);
});

test("a resuming proxy's own account (hello resources) is diffed: only what differs from it is sent", () => {
  const m = mesh(8);
  const enc = new DeltaEncoder();
  const before = m.compile("svc-0-1");
  const told = (JSON.parse(lineOf(enc.encode(1, before, undefined))) as SnapshotMessage).resources!;
  m.change(workload("svc-5", 2, 30_000));
  const after = m.compile("svc-0-1");
  const fresh = new DeltaEncoder(); // a restarted control plane: nothing shared with the first
  const delta = JSON.parse(
    lineOf(fresh.encode(1, after, fresh.fromHello(before.version, told))),
  ) as DeltaMessage;
  assert.equal(delta.type, "delta");
  assert.equal(delta.base, before.version);
  assert.deepEqual(Object.keys(delta.clusters), ["svc-5.default"]);
  // A proxy that claims versions we never made gets those entries again, whole.
  const wrong: ResourceVersions = {
    outbound: { ...told.outbound, "svc-1.default": "0000000000000000" },
    clusters: told.clusters,
  };
  const d2 = JSON.parse(
    lineOf(fresh.encode(2, after, fresh.fromHello(before.version, wrong))),
  ) as DeltaMessage;
  assert.deepEqual(Object.keys(d2.outbound), ["svc-1.default"]);
});
