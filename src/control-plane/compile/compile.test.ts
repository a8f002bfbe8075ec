// Golden-file tests: each testdata/<case>.yaml holds resources (and, in comments, which proxy to
// compile for, what it reaches, which workloads are unhealthy or not serving — status cannot be applied, so the
// test sets it); testdata/<case>.golden.json is what that proxy receives. Regenerate after an
// intended change with UPDATE_GOLDEN=1 and review the diff.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type {
  AnyResource,
  FaultInjection,
  GRPCRoute,
  HTTPRoute,
  Mesh,
  ReferenceGrant,
  Service,
  TrafficPolicy,
  Workload,
  WorkloadStatus,
} from "../../model/resources.ts";
import { validateManifests } from "../../model/validate.ts";
import { compileSnapshot, prepareState, type MeshState } from "./compile.ts";

const dir = join(import.meta.dirname, "testdata");
const UNHEALTHY: WorkloadStatus = {
  health: "Unhealthy",
  detail: "GET /healthz: 500",
  since: "2026-01-01T00:01:00Z",
};

function load(file: string): {
  state: MeshState;
  proxy: Workload;
  reach?: string[];
  appPorts?: Record<string, number>;
} {
  const text = readFileSync(join(dir, file), "utf8");
  const { resources, violations } = validateManifests(text, file);
  assert.deepEqual(violations, [], `testdata ${file} must be valid`);
  const unhealthy = new Set(
    text
      .match(/^# unhealthy: (.+)$/m)?.[1]
      .split(",")
      .map((s) => s.trim()),
  );
  const notServing = new Set(
    text
      .match(/^# not serving: (.+)$/m)?.[1]
      .split(",")
      .map((s) => s.trim()),
  );
  const statusOf = (name: string): WorkloadStatus | undefined =>
    unhealthy.has(name) || notServing.has(name)
      ? { ...(unhealthy.has(name) ? UNHEALTHY : {}), ...(notServing.has(name) ? { serving: false } : {}) }
      : undefined;
  const stamped = resources.map((r, i) => ({
    ...r,
    metadata: { ...r.metadata, creationTimestamp: `2026-01-01T00:00:${String(i).padStart(2, "0")}Z` },
    ...(r.kind === "Workload" && statusOf(r.metadata.name) ? { status: statusOf(r.metadata.name) } : {}),
  })) as AnyResource[];
  const of = <T extends AnyResource>(k: string) => stamped.filter((r) => r.kind === k) as T[];
  const state: MeshState = {
    mesh: of<Mesh>("Mesh")[0],
    services: of<Service>("Service"),
    workloads: of<Workload>("Workload"),
    routes: of<HTTPRoute>("HTTPRoute"),
    grpcRoutes: of<GRPCRoute>("GRPCRoute"),
    trafficPolicies: of<TrafficPolicy>("TrafficPolicy"),
    faultInjections: of<FaultInjection>("FaultInjection"),
    referenceGrants: of<ReferenceGrant>("ReferenceGrant"),
  };
  const proxyName = text.match(/^# proxy: (\S+)/m)?.[1];
  const proxy = state.workloads.find((w) => w.metadata.name === proxyName);
  assert.ok(proxy, `${file}: "# proxy:" must name a Workload`);
  const reach = text
    .match(/^# reach: (.+)$/m)?.[1]
    .split(",")
    .map((s) => s.trim());
  const appPortsLine = text.match(/^# app ports: (.+)$/m)?.[1];
  const appPorts =
    appPortsLine === undefined
      ? undefined
      : Object.fromEntries(
          appPortsLine
            .split(",")
            .map((kv) => kv.trim().split("="))
            .map(([k, v]) => [k, Number(v)]),
        );
  return { state, proxy, reach, appPorts };
}

for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
  test(`compiles ${file} as in its golden file`, () => {
    const { state, proxy, reach, appPorts } = load(file);
    const snapshot = compileSnapshot(state, { workload: proxy, appPort: 8080, reach, appPorts });
    const goldenPath = join(dir, file.replace(/\.yaml$/, ".golden.json"));
    const actual = JSON.stringify(snapshot, null, 2) + "\n";
    if (process.env.UPDATE_GOLDEN) writeFileSync(goldenPath, actual);
    assert.equal(actual, readFileSync(goldenPath, "utf8"));
  });
}

test("the version changes exactly when the content does", () => {
  const { state, proxy } = load("weighted-split.yaml");
  const a = compileSnapshot(state, { workload: proxy, appPort: 8080 });
  const b = compileSnapshot(structuredClone(state), { workload: proxy, appPort: 8080 });
  assert.equal(a.version, b.version);
  const changed = structuredClone(state);
  changed.routes[0].spec.rules![0].backendRefs![0].weight = 50;
  assert.notEqual(compileSnapshot(changed, { workload: proxy, appPort: 8080 }).version, a.version);
});

test("a split's clusters hold only the workloads their selectors pick", () => {
  const { state, proxy } = load("weighted-split.yaml");
  const s = compileSnapshot(state, { workload: proxy, appPort: 8080 });
  assert.deepEqual(
    s.clusters["reviews-v1.default"].endpoints.map((e) => e.workload),
    ["reviews-a"],
  );
  assert.deepEqual(
    s.clusters["reviews-v2.default"].endpoints.map((e) => e.workload),
    ["reviews-b"],
  );
  // Exact path beats the catch-all; the header rule also beats it.
  assert.deepEqual(
    s.outbound["reviews.default"].routes.map((r) => r.name),
    ["default/reviews-canary/1", "default/reviews-canary/1", "default/reviews-canary/0"],
  );
  assert.equal(s.outbound["reviews.default"].routes[0].matches[0].path?.type, "Exact");
});

test("with no route attached, a service gets a catch-all route to itself", () => {
  const { state, proxy } = load("implicit-services.yaml");
  const s = compileSnapshot(state, { workload: proxy, appPort: 8080 });
  assert.deepEqual(s.outbound["backend.default"].routes, [
    { name: "default", matches: [{}], backends: [{ cluster: "backend.default", weight: 1 }] },
  ]);
  assert.equal(s.clusters["legacy.default"].endpoints[0].identity, undefined);
});

test("a route without filters, timeouts or retry carries none of their fields", () => {
  const { state, proxy, reach } = load("route-filters.yaml");
  const s = compileSnapshot(state, { workload: proxy, appPort: 8080, reach });
  const plain = s.outbound["reviews.default"].routes.find((r) => r.name === "default/reviews/plain");
  assert.deepEqual(Object.keys(plain ?? {}), ["name", "matches", "backends"]);
  // Mirror targets are clusters even though the proxy does not reach those services.
  assert.deepEqual(Object.keys(s.outbound), ["reviews.default"]);
  assert.deepEqual(Object.keys(s.clusters).sort(), ["audit.ops", "reviews.default", "shadow.default"]);
});

test("an ExtensionRef to a missing FaultInjection aborts with 500 until the FaultInjection exists", () => {
  const { state, proxy, reach } = load("route-resilience.yaml");
  const fault = (st: MeshState) =>
    compileSnapshot(st, { workload: proxy, appPort: 8080, reach }).outbound["ratings.default"].routes.find(
      (r) => r.name === "default/ratings/missing-fault",
    )?.fault;
  assert.deepEqual(fault(state), { abort: { status: 500, percent: 100 } });
  const added = structuredClone(state);
  added.faultInjections.push({
    apiVersion: "weft.dev/v1alpha1",
    kind: "FaultInjection",
    metadata: { name: "nowhere", namespace: "default" },
    spec: { delay: { fixedDelay: "250ms" } },
  });
  assert.deepEqual(fault(added), { delay: { ms: 250, percent: 100 } });
});

test("the oldest TrafficPolicy targeting a Service wins, then the first by name", () => {
  const { state, proxy } = load("traffic-policy.yaml");
  const lb = (st: MeshState) =>
    compileSnapshot(st, { workload: proxy, appPort: 8080 }).clusters["ratings.default"].policy?.loadBalancer
      ?.type;
  assert.equal(lb(state), "RoundRobin"); // ratings-first is older
  const swapped = structuredClone(state);
  const byName = (n: string) => swapped.trafficPolicies.find((p) => p.metadata.name === n)!;
  byName("ratings-second").metadata.creationTimestamp = "2025-12-31T00:00:00Z";
  assert.equal(lb(swapped), "Random");
  // Same creation time: the name decides, so the result never depends on the store's order.
  byName("ratings-first").metadata.creationTimestamp = "2025-12-31T00:00:00Z";
  swapped.trafficPolicies.reverse();
  assert.equal(lb(swapped), "RoundRobin");
});

test("a policy with only inbound settings gives callers no cluster policy; its own proxies get them", () => {
  const { state, proxy } = load("traffic-policy.yaml");
  const s = compileSnapshot(state, { workload: proxy, appPort: 8080 });
  assert.equal(s.clusters["web.default"].policy, undefined);
  assert.equal(s.clusters["catalog.default"].policy, undefined);
  assert.deepEqual(s.inbound.rateLimit, { requestsPerSecond: 2.5, burst: 3, perSource: false });
  // A proxy of another service does not receive web's inbound settings.
  const reviews = state.workloads.find((w) => w.metadata.name === "reviews-1")!;
  const other = compileSnapshot(state, { workload: reviews, appPort: 8080 });
  assert.deepEqual(other.inbound, { appAddress: "127.0.0.1", appPort: 8080, ports: [] });
  assert.equal(other.proxy.zone, "zone-a");
});

test("an unhealthy workload leaves its cluster and comes back when healthy again", () => {
  const { state, proxy } = load("endpoint-health.yaml");
  const endpoints = (st: MeshState) =>
    compileSnapshot(st, { workload: proxy, appPort: 8080 }).clusters["reviews.default"].endpoints.map(
      (e) => e.workload,
    );
  assert.deepEqual(endpoints(state), ["reviews-a", "reviews-c"]);
  const recovered = structuredClone(state);
  recovered.workloads.find((w) => w.metadata.name === "reviews-b")!.status = {
    health: "Healthy",
    since: "2026-01-01T00:02:00Z",
  };
  assert.deepEqual(endpoints(recovered), ["reviews-a", "reviews-b", "reviews-c"]);
  assert.notEqual(
    compileSnapshot(recovered, { workload: proxy, appPort: 8080 }).version,
    compileSnapshot(state, { workload: proxy, appPort: 8080 }).version,
  );
});

test("a state prepared once compiles every proxy, in any order, exactly as a fresh compile does", () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
    const { state, reach } = load(file);
    const prepared = prepareState(state);
    // Every workload as the proxy, with and without the case's reach, sharing one preparation.
    for (const r of [reach, undefined]) {
      for (const w of [...state.workloads].reverse()) {
        const req = { workload: w, appPort: 8080, reach: r };
        assert.deepEqual(
          compileSnapshot(state, req, prepared),
          compileSnapshot(state, req),
          `${file} as ${w.metadata.name}`,
        );
      }
    }
  }
});

test("GAMMA scope: a consumer route changes only its own namespace's callers; the rest keep the producer's", () => {
  const { state } = load("route-scope.yaml");
  const prepared = prepareState(state);
  const routesOf = (proxyName: string) => {
    const w = state.workloads.find((x) => x.metadata.name === proxyName)!;
    const s = compileSnapshot(state, { workload: w, appPort: 8080 }, prepared);
    return s.outbound["reviews.shop"].routes.map((r) => `${r.name} ${JSON.stringify(r.timeouts ?? {})}`);
  };
  assert.deepEqual(routesOf("web-1"), ['fast/reviews-fast/0 {"requestMs":100}']);
  assert.deepEqual(routesOf("batch-1"), ['slow/reviews-patient/0 {"requestMs":30000}']);
  // Callers with no consumer route of their own — in the Service's namespace or any other — get the
  // producer route, untouched by fast's and slow's.
  assert.deepEqual(routesOf("admin-1"), ["shop/reviews-split/0 {}"]);
  assert.deepEqual(routesOf("reviews-1"), ["shop/reviews-split/0 {}"]);
  // Without a producer route, callers elsewhere get the catch-all, not another namespace's route.
  const noProducer = structuredClone(state);
  noProducer.routes = noProducer.routes.filter((r) => r.metadata.namespace !== "shop");
  const admin = noProducer.workloads.find((x) => x.metadata.name === "admin-1")!;
  assert.deepEqual(
    compileSnapshot(noProducer, { workload: admin, appPort: 8080 }).outbound["reviews.shop"].routes.map(
      (r) => r.name,
    ),
    ["default"],
  );
});

test("a ReferenceGrant opens a namespace's Services to routes; removing it makes the backend invalid again", () => {
  const { state, proxy, reach } = load("backend-refs.yaml");
  const backends = (st: MeshState) =>
    compileSnapshot(st, { workload: proxy, appPort: 8080, reach }).outbound[
      "reviews.default"
    ].routes[0].backends.map((b) => `${b.cluster} ${b.invalid?.reason ?? "ok"}`);
  assert.deepEqual(backends(state), [
    "reviews.default ok",
    "ghost.default BackendNotFound",
    "payments.billing ok",
    "missing.billing BackendNotFound",
    "ledger.finance RefNotPermitted",
  ]);
  const revoked = structuredClone(state);
  revoked.referenceGrants = revoked.referenceGrants.filter((g) => g.metadata.namespace !== "billing");
  const s = compileSnapshot(revoked, { workload: proxy, appPort: 8080, reach });
  assert.deepEqual(backends(revoked).slice(2, 4), [
    "payments.billing RefNotPermitted",
    "missing.billing RefNotPermitted",
  ]);
  assert.equal(s.clusters["payments.billing"], undefined);
  // A grant for another kind or namespace opens nothing; one naming this route's namespace does.
  const granted = structuredClone(state);
  granted.referenceGrants
    .find((g) => g.metadata.namespace === "finance")!
    .spec.from.push({
      group: "gateway.networking.k8s.io",
      kind: "GRPCRoute",
      namespace: "default",
    });
  assert.equal(backends(granted)[4], "ledger.finance RefNotPermitted");
  granted.referenceGrants
    .find((g) => g.metadata.namespace === "finance")!
    .spec.from.push({
      group: "gateway.networking.k8s.io",
      kind: "HTTPRoute",
      namespace: "default",
    });
  assert.equal(backends(granted)[4], "ledger.finance ok");
  // The mirror to ledger.finance is left out without the grant and sent with it.
  const mirrors = (st: MeshState) =>
    compileSnapshot(st, { workload: proxy, appPort: 8080, reach }).outbound["reviews.default"].routes[0]
      .mirrors;
  assert.equal(mirrors(state), undefined);
  assert.deepEqual(mirrors(granted), [{ cluster: "ledger.finance", percent: 100 }]);
});
