// Route status (Gateway API RouteStatus): Accepted and ResolvedRefs per parentRef, computed from the
// same prepared state the compiler resolves backendRefs against.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { AnyResource, GRPCRoute, HTTPRoute } from "../../model/resources.ts";
import { validateManifests } from "../../model/validate.ts";
import { prepareState, type MeshState } from "./compile.ts";
import { routeStatus, ROUTE_CONTROLLER_NAME } from "./route-status.ts";

const BASE = `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: reviews }
spec: { ports: [{ port: 9080, name: http }, { port: 9090, name: grpc, protocol: grpc }] }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: ratings }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: payments, namespace: billing }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: ledger, namespace: finance }
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: audit-1, namespace: ops }
spec: { service: audit, address: 127.0.0.1, port: 15006 }
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: to-billing, namespace: billing }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default }]
  to: [{ group: "", kind: Service }]
`;

function state(yaml: string): {
  refs: ReturnType<typeof prepareState>["refs"];
  routes: (HTTPRoute | GRPCRoute)[];
} {
  const { resources, violations } = validateManifests(BASE + "---\n" + yaml, "t.yaml");
  assert.deepEqual(violations, []);
  const all = resources as AnyResource[];
  const of = <K extends AnyResource["kind"]>(k: K) => all.filter((r) => r.kind === k) as never[];
  const s: MeshState = {
    services: of("Service"),
    workloads: of("Workload"),
    routes: of("HTTPRoute"),
    grpcRoutes: of("GRPCRoute"),
    trafficPolicies: [],
    faultInjections: [],
    referenceGrants: of("ReferenceGrant"),
  };
  return {
    refs: prepareState(s).refs,
    routes: all.filter((r) => r.kind === "HTTPRoute" || r.kind === "GRPCRoute") as (HTTPRoute | GRPCRoute)[],
  };
}

/** "Accepted=True/Accepted ResolvedRefs=False/BackendNotFound" per parent. */
function brief(route: HTTPRoute | GRPCRoute, refs: ReturnType<typeof prepareState>["refs"]): string[] {
  return routeStatus(route, refs).parents.map((p) =>
    p.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).join(" "),
  );
}

test("every reference resolves: Accepted and ResolvedRefs True, one entry per parentRef, spec-shaped", () => {
  const { refs, routes } = state(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ok }
spec:
  parentRefs: [{ kind: Service, name: reviews }, { kind: Service, name: reviews, port: 9080 }]
  rules:
    - backendRefs: [{ name: reviews }, { name: payments, namespace: billing }]
      filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: ratings } } }]
`);
  const s = routeStatus(routes[0], refs);
  assert.equal(s.parents.length, 2);
  assert.deepEqual(s.parents[1].parentRef, { group: "", kind: "Service", name: "reviews", port: 9080 });
  assert.equal(s.parents[0].controllerName, ROUTE_CONTROLLER_NAME);
  assert.deepEqual(s.parents[0].conditions, [
    { type: "Accepted", status: "True", reason: "Accepted", message: "attached to Service reviews.default" },
    { type: "ResolvedRefs", status: "True", reason: "ResolvedRefs", message: "every reference resolves" },
  ]);
});

test("ResolvedRefs False: BackendNotFound, RefNotPermitted (no ReferenceGrant), a mirror's ref; every problem named with its field", () => {
  const { refs, routes } = state(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: broken }
spec:
  parentRefs: [{ kind: Service, name: reviews }]
  rules:
    - backendRefs: [{ name: reviews }, { name: ghost }]
    - backendRefs: [{ name: ledger, namespace: finance }]
      filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: nowhere } } }]
`);
  const [p] = routeStatus(routes[0], refs).parents;
  assert.deepEqual(p.conditions[0].status, "True");
  assert.deepEqual(p.conditions[1], {
    type: "ResolvedRefs",
    status: "False",
    reason: "BackendNotFound",
    message:
      "spec.rules[0].backendRefs[1]: Service ghost.default does not exist; " +
      "spec.rules[1].filters[0].requestMirror: Service nowhere.default does not exist; " +
      "spec.rules[1].backendRefs[0]: Service ledger.finance is in another namespace and no ReferenceGrant in finance allows HTTPRoutes from default to refer to it",
  });
  const { refs: r2, routes: only } = state(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ungranted }
spec:
  parentRefs: [{ kind: Service, name: reviews }]
  rules: [{ backendRefs: [{ name: ledger, namespace: finance }] }]
`);
  assert.deepEqual(brief(only[0], r2), ["Accepted=True/Accepted ResolvedRefs=False/RefNotPermitted"]);
});

test("resolution is per parent: a consumer route's backendRef to its parent needs no grant, to another parent it does", () => {
  const { refs, routes } = state(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: consumer, namespace: finance }
spec:
  parentRefs: [{ kind: Service, name: reviews, namespace: default }, { kind: Service, name: ratings, namespace: default }]
  rules: [{ backendRefs: [{ name: reviews, namespace: default }] }]
`);
  assert.deepEqual(brief(routes[0], refs), [
    "Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs",
    "Accepted=True/Accepted ResolvedRefs=False/RefNotPermitted",
  ]);
});

test("Accepted False (NoMatchingParent): a parent Service that does not exist, a port or sectionName it does not declare", () => {
  const { refs, routes } = state(`
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: parents }
spec:
  parentRefs:
    - { kind: Service, name: gone }
    - { kind: Service, name: reviews, port: 7000 }
    - { kind: Service, name: reviews, sectionName: admin }
    - { kind: Service, name: reviews, sectionName: grpc }
    - { kind: Service, name: audit, namespace: ops, port: 1234 }
  rules: [{ backendRefs: [{ name: reviews }] }]
`);
  const s = routeStatus(routes[0], refs);
  assert.deepEqual(
    s.parents.map((p) => [p.conditions[0].status, p.conditions[0].reason, p.conditions[0].message]),
    [
      ["False", "NoMatchingParent", "Service gone.default does not exist"],
      ["False", "NoMatchingParent", "Service reviews.default declares no port 7000"],
      ["False", "NoMatchingParent", 'Service reviews.default declares no port named "admin"'],
      ["True", "Accepted", "attached to Service reviews.default"],
      // An implicit Service (registered by a workload) declares no ports: any port attaches.
      ["True", "Accepted", "attached to Service audit.ops"],
    ],
  );
  // A GRPCRoute needs its own ReferenceGrant: billing's grant names HTTPRoutes only.
  const { refs: r2, routes: g } = state(`
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: to-billing }
spec:
  parentRefs: [{ kind: Service, name: reviews }]
  rules: [{ backendRefs: [{ name: payments, namespace: billing }] }]
`);
  assert.deepEqual(brief(g[0], r2), ["Accepted=True/Accepted ResolvedRefs=False/RefNotPermitted"]);
});
