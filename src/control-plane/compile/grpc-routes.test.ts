// GRPCRoute compilation checked through the proxy's own route matcher: the compiled routes, tried in
// order as the proxy tries them, send each gRPC call where the Gateway API says it goes.

import { grantIndex } from "./backend-refs.ts";
import { routeScopeIndex, routesInScope } from "./route-scope.ts";
import assert from "node:assert/strict";
import { test } from "node:test";
import type { GRPCRoute, HTTPRoute, Service } from "../../model/resources.ts";
import { validateManifests } from "../../model/validate.ts";
import { compileRouteMatches, type RequestView } from "../../proxy/outbound/route-match.ts";
import { compileSnapshot, type MeshState } from "./compile.ts";
import { attachedGrpcRoutes } from "./grpc-routes.ts";
import { faultIndex } from "./traffic.ts";

const SERVICE: Service = {
  apiVersion: "weft.dev/v1alpha1",
  kind: "Service",
  metadata: { name: "catalog", namespace: "default" },
  spec: {},
};

function routes(yaml: string): GRPCRoute[] {
  const { resources, violations } = validateManifests(yaml, "t.yaml");
  assert.deepEqual(violations, []);
  return resources.map((r, i) => ({
    ...r,
    metadata: { ...r.metadata, creationTimestamp: `2026-01-01T00:00:0${i}Z` },
  })) as GRPCRoute[];
}

function view(path: string, headers: Record<string, string> = {}, method = "POST"): RequestView {
  const h: Record<string, string> = { "content-type": "application/grpc", ...headers };
  return { method, path, header: (n) => h[n], queryParam: () => null };
}

/** The name of the first compiled route that accepts `r`, as the proxy picks it; "none" otherwise. */
function pick(all: GRPCRoute[], r: RequestView): string {
  const key = `${SERVICE.metadata.name}.${SERVICE.metadata.namespace}`;
  const services = new Map([[key, SERVICE]]);
  const scoped = routesInScope(routeScopeIndex(all, services), key, SERVICE.metadata.namespace).routes;
  const refs = { services, grants: grantIndex([]) };
  for (const route of attachedGrpcRoutes(SERVICE, scoped, faultIndex([]), refs)) {
    const m = compileRouteMatches(route.matches);
    if (m === undefined || m(r)) return route.name;
  }
  return "none";
}

const rule = (name: string, match: string) => `
    - name: ${name}
      matches: [${match}]
      backendRefs: [{name: catalog}]`;

const ALL = routes(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: catalog}
spec:
  parentRefs: [{kind: Service, name: catalog}]
  rules:
    - name: catch-all
      backendRefs: [{name: catalog}]${rule("regex", '{method: {type: RegularExpression, service: "shop\\\\..*", method: "List.*"}}')}${rule("service", "{method: {service: shop.v1.Catalog}}")}${rule("exact", "{method: {service: shop.v1.Catalog, method: GetItem}}")}${rule("method-only", "{method: {method: Watch}}")}${rule("tenant", "{method: {service: shop.v1.Catalog, method: GetItem}, headers: [{name: X-Tenant, value: acme}]}")}
`);

test("method matches: exact service+method beats service-only beats regex beats catch-all", () => {
  assert.equal(pick(ALL, view("/shop.v1.Catalog/GetItem")), "default/catalog/exact");
  assert.equal(pick(ALL, view("/shop.v1.Catalog/GetItem", { "x-tenant": "acme" })), "default/catalog/tenant");
  assert.equal(pick(ALL, view("/shop.v1.Catalog/ListItems")), "default/catalog/service");
  assert.equal(pick(ALL, view("/shop.v2.Other/ListAll")), "default/catalog/regex");
  assert.equal(pick(ALL, view("/any.Service/Watch")), "default/catalog/method-only");
  assert.equal(pick(ALL, view("/other.Svc/Get")), "default/catalog/catch-all");
});

test("service-only matches whole path segments; method-only needs the exact method name", () => {
  assert.equal(pick(ALL, view("/shop.v1.CatalogX/GetItem")), "default/catalog/catch-all");
  assert.equal(pick(ALL, view("/any.Service/WatchAll")), "default/catalog/catch-all");
});

test("a GRPCRoute never routes non-gRPC requests: wrong content-type or method → no route", () => {
  assert.equal(pick(ALL, view("/shop.v1.Catalog/GetItem", { "content-type": "application/json" })), "none");
  assert.equal(
    pick(ALL, view("/shop.v1.Catalog/GetItem", { "content-type": "application/grpc-web" })),
    "none",
  );
  assert.equal(pick(ALL, view("/shop.v1.Catalog/GetItem", {}, "GET")), "none");
  assert.equal(
    pick(ALL, view("/x/y", { "content-type": "application/grpc+proto" })),
    "default/catalog/catch-all",
  );
});

test("ties go to the oldest route, then rule order", () => {
  const two = routes(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: zz-old}
spec:
  parentRefs: [{kind: Service, name: catalog}]
  rules:${rule("first", "{method: {service: a.B, method: C}}")}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: aa-new}
spec:
  parentRefs: [{kind: Service, name: catalog}]
  rules:${rule("second", "{method: {service: a.B, method: C}}")}
`);
  assert.equal(pick(two, view("/a.B/C")), "default/zz-old/first");
});

test("GAMMA: a GRPCRoute on a Service takes its traffic; the Service's HTTPRoutes are ignored", () => {
  const [grpc] = ALL;
  const http = validateManifests(
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog-http}
spec:
  parentRefs: [{kind: Service, name: catalog}]
  rules: [{backendRefs: [{name: catalog}]}]
`,
    "h.yaml",
  ).resources as HTTPRoute[];
  const web = {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Workload",
    metadata: { name: "web-1", namespace: "default" },
    spec: { service: "web", address: "10.0.0.1", port: 15006 },
  } as const;
  const state: MeshState = {
    services: [SERVICE],
    workloads: [web],
    routes: http,
    grpcRoutes: [grpc!],
    referenceGrants: [],
    trafficPolicies: [],
    faultInjections: [],
  };
  const names = (s: MeshState) =>
    compileSnapshot(s, { workload: web, appPort: 1 }).outbound["catalog.default"]!.routes.map((r) => r.name);
  assert.ok(
    names(state).every((n) => n.startsWith("default/catalog/")),
    names(state).join(),
  );
  assert.deepEqual(names({ ...state, grpcRoutes: [] }), ["default/catalog-http/0"]);
});
