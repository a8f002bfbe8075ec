// Incremental compilation: a change goes into the kept PreparedState (mesh-index.ts →
// prepared-state.ts) and recomputes only the pieces it touches — counted — while every snapshot stays
// exactly what a compile from scratch gives (same content, same version, same encoding).

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { AnyResource, HTTPRoute, Service, Workload } from "../../model/resources.ts";
import { encodeMessage } from "../../model/stream-protocol.ts";
import { validateManifests } from "../../model/validate.ts";
import { encodeSnapshotMessage, snapshotMessageParts } from "../stream/delta-encoder.ts";
import { compileSnapshot, prepareState, type MeshState, type ProxyRequest } from "./compile.ts";
import { encodeSnapshot } from "./piece.ts";
import type { PreparedState } from "./prepared-state.ts";

const dir = join(import.meta.dirname, "testdata");

function stateOf(resources: readonly AnyResource[]): MeshState {
  const of = <T>(k: string) => resources.filter((r) => r.kind === k) as T[];
  return {
    mesh: of<MeshState["mesh"]>("Mesh")[0],
    services: of("Service"),
    workloads: of("Workload"),
    routes: of("HTTPRoute"),
    grpcRoutes: of("GRPCRoute"),
    trafficPolicies: of("TrafficPolicy"),
    faultInjections: of("FaultInjection"),
    referenceGrants: of("ReferenceGrant"),
  };
}

/** The incremental compile equals a compile from scratch of the same resources, byte for byte. */
function assertSameAsFresh(
  resources: readonly AnyResource[],
  req: ProxyRequest,
  kept: PreparedState,
  at: string,
) {
  const state = stateOf(resources);
  const incremental = compileSnapshot(state, req, kept);
  const fresh = compileSnapshot(state, req);
  assert.deepEqual(incremental, fresh, at);
  assert.equal(incremental.version, fresh.version, at);
  assert.equal(encodeSnapshot(incremental), JSON.stringify(fresh), `${at}: encoding`);
}

for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
  test(`${file}: applied and deleted one resource at a time, every snapshot is the from-scratch one`, () => {
    const text = readFileSync(join(dir, file), "utf8");
    const { resources } = validateManifests(text, file);
    const all = resources.map((r, i) => ({
      ...r,
      metadata: { ...r.metadata, creationTimestamp: `2026-01-01T00:00:${String(i).padStart(2, "0")}Z` },
    })) as AnyResource[];
    const proxy = all.find((r) => r.metadata.name === text.match(/^# proxy: (\S+)/m)?.[1]) as Workload;
    const reach = text
      .match(/^# reach: (.+)$/m)?.[1]
      .split(",")
      .map((s) => s.trim());
    const requests: ProxyRequest[] = [
      { workload: proxy, appPort: 8080 },
      { workload: proxy, appPort: 8080, reach: reach ?? ["web"] },
    ];
    const kept = prepareState(stateOf([]));
    const applied: AnyResource[] = [];
    for (const r of all) {
      kept.apply([{ new: r }]);
      applied.push(r);
      for (const req of requests)
        assertSameAsFresh(applied, req, kept, `after adding ${r.kind} ${r.metadata.name}`);
    }
    // Updates: every resource rewritten with a changed label, then deleted, oldest first.
    for (const [i, r] of [...applied].entries()) {
      const next = {
        ...r,
        metadata: { ...r.metadata, labels: { ...r.metadata.labels, rev: "2" } },
      } as AnyResource;
      kept.apply([{ old: r, new: next }]);
      applied[i] = next;
      for (const req of requests)
        assertSameAsFresh(applied, req, kept, `after updating ${r.kind} ${r.metadata.name}`);
    }
    while (applied.length > 0) {
      const r = applied.shift() as AnyResource;
      kept.apply([{ old: r }]);
      for (const req of requests)
        assertSameAsFresh(applied, req, kept, `after deleting ${r.kind} ${r.metadata.name}`);
    }
  });
}

function service(name: string, namespace = "default"): Service {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Service",
    metadata: { name, namespace },
    spec: { ports: [{ port: 8080, protocol: "http" }] },
  };
}

function workload(name: string, svc: string, namespace = "default"): Workload {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Workload",
    metadata: { name, namespace, labels: {} },
    spec: {
      service: svc,
      address: "127.0.0.1",
      port: 15006,
      identity: `spiffe://weft.local/ns/${namespace}/sa/${svc}`,
    },
  };
}

function route(name: string, namespace: string, parent: string, parentNs = "default"): HTTPRoute {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name, namespace },
    spec: {
      parentRefs: [{ kind: "Service", name: parent, namespace: parentNs }],
      rules: [
        {
          matches: [{ path: { type: "PathPrefix", value: "/v2" } }],
          backendRefs: [{ name: parent, namespace: parentNs }],
        },
      ],
    },
  };
}

/** 20 Services with 2 workloads each, and a proxy in "default" and in "other" (unscoped). */
function mesh() {
  const resources: AnyResource[] = [];
  for (let i = 0; i < 20; i++) {
    resources.push(service(`svc${i}`), workload(`svc${i}-a`, `svc${i}`), workload(`svc${i}-b`, `svc${i}`));
  }
  const kept = prepareState(stateOf(resources));
  const web: ProxyRequest = { workload: workload("svc0-a", "svc0"), appPort: 8080 };
  const other: ProxyRequest = { workload: workload("client-1", "client", "other"), appPort: 8080 };
  const scoped: ProxyRequest = { workload: workload("svc1-a", "svc1"), appPort: 8080, reach: ["svc2"] };
  const compileAll = () => [web, other, scoped].map((p) => compileSnapshot(stateOf(resources), p, kept));
  const before = compileAll();
  const counted = () => ({ ...kept.recomputed });
  return { resources, kept, compileAll, before, counted };
}

test("a Workload joining one Service recomputes that Service's cluster only; other snapshots keep their version", () => {
  const { resources, kept, compileAll, before, counted } = mesh();
  const start = counted();
  const joined = workload("svc5-c", "svc5");
  resources.push(joined);
  const touched = kept.apply([{ new: joined }]);
  assert.deepEqual([...touched.clusters], ["svc5.default"]);
  assert.deepEqual([...touched.routes], []);
  const after = compileAll();
  assert.deepEqual(counted(), { clusters: start.clusters + 1, routes: start.routes });
  assert.notEqual(after[0].version, before[0].version, "an unscoped proxy sees the new endpoint");
  assert.equal(after[0].clusters["svc5.default"].endpoints.length, 3);
  assert.equal(after[2].version, before[2].version, "a proxy reaching only svc2 keeps its version");
  // Unscoped proxies of one namespace share one view: the same outbound and clusters objects.
  const peer = compileSnapshot(
    stateOf(resources),
    { workload: workload("svc9-a", "svc9"), appPort: 8080 },
    kept,
  );
  assert.equal(peer.outbound, after[0].outbound);
  assert.equal(peer.clusters, after[0].clusters);
  assert.notEqual(after[1].outbound, after[0].outbound, "another namespace has a view of its own");
  // Unchanged pieces are the very same objects (and encodings), shared, not rebuilt.
  assert.equal(after[0].clusters["svc7.default"], before[0].clusters["svc7.default"]);
  assert.equal(after[2].outbound["svc2.default"], before[2].outbound["svc2.default"]);
});

test("an HTTPRoute recomputes only its parent's route tables, one per caller scope in use", () => {
  const { resources, kept, compileAll, before, counted } = mesh();
  const start = counted();
  const producer = route("svc3-v2", "default", "svc3");
  resources.push(producer);
  const touched = kept.apply([{ new: producer }]);
  assert.deepEqual([...touched.routes], ["svc3.default"]);
  assert.deepEqual([...touched.clusters], []);
  let after = compileAll();
  // One producer table, shared by callers in "default" and in "other".
  assert.deepEqual(counted(), { clusters: start.clusters, routes: start.routes + 1 });
  assert.equal(after[0].outbound["svc3.default"].routes[0].name, "default/svc3-v2/0");
  assert.equal(after[1].outbound["svc3.default"].routes[0].name, "default/svc3-v2/0");
  assert.equal(after[2].version, before[2].version);

  // A consumer route in "other": svc3's tables are rebuilt, the producer's and other's own.
  const consumer = route("svc3-mine", "other", "svc3");
  resources.push(consumer);
  kept.apply([{ new: consumer }]);
  const mid = counted();
  after = compileAll();
  assert.deepEqual(counted(), { clusters: mid.clusters, routes: mid.routes + 2 });
  assert.equal(after[0].outbound["svc3.default"].routes[0].name, "default/svc3-v2/0");
  assert.equal(after[1].outbound["svc3.default"].routes[0].name, "other/svc3-mine/0");
});

test("what each kind touches: a TrafficPolicy its target's cluster, a FaultInjection the routes using it, a Mesh no piece", () => {
  const { resources, kept, compileAll, counted } = mesh();
  const policy = {
    apiVersion: "weft.dev/v1alpha1",
    kind: "TrafficPolicy",
    metadata: { name: "lb", namespace: "default" },
    spec: { targetRef: { kind: "Service", name: "svc4" }, loadBalancer: { type: "Random" } },
  } as AnyResource;
  resources.push(policy);
  let touched = kept.apply([{ new: policy }]);
  assert.deepEqual([...touched.clusters], ["svc4.default"]);
  let start = counted();
  assert.equal(compileAll()[0].clusters["svc4.default"].policy?.loadBalancer?.type, "Random");
  assert.deepEqual(counted(), { clusters: start.clusters + 1, routes: start.routes });

  const r = route("svc6-fault", "default", "svc6");
  (r.spec.rules![0].filters ??= []).push({
    type: "ExtensionRef",
    extensionRef: { group: "weft.dev", kind: "FaultInjection", name: "slow" },
  });
  resources.push(r);
  kept.apply([{ new: r }]);
  compileAll();
  const fault = {
    apiVersion: "weft.dev/v1alpha1",
    kind: "FaultInjection",
    metadata: { name: "slow", namespace: "default" },
    spec: { delay: { fixedDelay: "1s" } },
  } as AnyResource;
  resources.push(fault);
  touched = kept.apply([{ new: fault }]);
  assert.deepEqual([...touched.routes], ["svc6.default"]);
  start = counted();
  assert.equal(compileAll()[0].outbound["svc6.default"].routes[0].fault?.delay?.ms, 1000);
  assert.deepEqual(counted(), { clusters: start.clusters, routes: start.routes + 1 });

  const meshResource = {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Mesh",
    metadata: { name: "default", namespace: "default" },
    spec: { trustDomain: "example.org" },
  } as AnyResource;
  resources.push(meshResource);
  touched = kept.apply([{ new: meshResource }]);
  assert.equal(touched.allProxies, true);
  start = counted();
  assert.equal(compileAll()[0].mesh.trustDomain, "example.org");
  assert.deepEqual(counted(), start);
});

test("a snapshot message built from cached encodings is the protocol's line, byte for byte", () => {
  const { before, resources, kept } = mesh();
  for (const s of before) {
    assert.equal(
      encodeSnapshotMessage(7, s),
      encodeMessage({ type: "snapshot", nonce: 7, version: s.version, snapshot: s }),
    );
  }
  // Two proxies of one view: their messages differ, but carry the view's encoding as the very same
  // Buffer (written by reference to each stream, not copied per proxy).
  const peer = compileSnapshot(
    stateOf(resources),
    { workload: workload("svc9-a", "svc9"), appPort: 8080 },
    kept,
  );
  const shared = (s: typeof peer) => snapshotMessageParts(1, s).filter((p) => Buffer.isBuffer(p));
  assert.equal(shared(before[0]).length, 1);
  assert.equal(shared(peer)[0], shared(before[0])[0]);
  assert.notEqual(encodeSnapshotMessage(1, peer), encodeSnapshotMessage(1, before[0]));
});

test("a ReferenceGrant recomputes only the routes reaching into its namespace from another one", () => {
  const { resources, kept, compileAll, counted } = mesh();
  // svc8's producer route sends to svc8 (same namespace); svc9's to "api" in namespace "shop".
  const local = route("svc8-v2", "default", "svc8");
  const cross = route("svc9-shop", "default", "svc9");
  cross.spec.rules![0].backendRefs = [{ name: "api", namespace: "shop" }];
  const api = service("api", "shop");
  resources.push(local, cross, api);
  kept.apply([{ new: local }, { new: cross }, { new: api }]);
  let after = compileAll();
  assert.equal(after[0].outbound["svc9.default"].routes[0].backends[0].invalid?.reason, "RefNotPermitted");

  const grant = {
    apiVersion: "gateway.networking.k8s.io/v1beta1",
    kind: "ReferenceGrant",
    metadata: { name: "from-default", namespace: "shop" },
    spec: {
      from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "default" }],
      to: [{ group: "", kind: "Service" }],
    },
  } as AnyResource;
  resources.push(grant);
  const touched = kept.apply([{ new: grant }]);
  assert.deepEqual([...touched.routes], ["svc9.default"], "only the route reaching into shop");
  assert.equal(touched.allRoutes, false);
  const start = counted();
  after = compileAll();
  assert.equal(after[0].outbound["svc9.default"].routes[0].backends[0].invalid, undefined);
  // svc9's producer table, once (shared by both unscoped namespaces): svc8's and the other 18 kept.
  assert.deepEqual(counted(), { clusters: start.clusters, routes: start.routes + 1 });

  // A grant in a namespace no route reaches into touches nothing.
  const elsewhere = { ...grant, metadata: { name: "g", namespace: "quiet" } } as AnyResource;
  assert.deepEqual([...kept.apply([{ new: elsewhere }]).routes], []);
  // Deleting the grant makes the backend invalid again; its index entry goes with the last grant.
  kept.apply([{ old: grant }, { old: elsewhere }]);
  assert.equal(
    compileAll()[0].outbound["svc9.default"].routes[0].backends[0].invalid?.reason,
    "RefNotPermitted",
  );
  assert.equal(kept.index.sizes().grants, 0);
});
