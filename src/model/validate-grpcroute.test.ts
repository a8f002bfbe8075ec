import assert from "node:assert/strict";
import { test } from "node:test";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const HEAD = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\n";
const lines = (text: string) => validateManifests(text, "route.yaml").violations.map(formatViolation);

test("a GRPCRoute with method and header matches, filters, weighted backends, timeouts and retry", () => {
  const { resources, violations } = validateManifests(
    `${HEAD}metadata: {name: catalog.canary, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: catalog}]
  rules:
    - name: get-item
      matches:
        - method: {service: shop.v1.Catalog, method: GetItem}
          headers: [{name: x-tenant, value: acme}]
        - method: {type: RegularExpression, method: "List.*"}
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-route, value: grpc}]}
        - type: RequestMirror
          requestMirror: {backendRef: {name: catalog-shadow}, percent: 10}
        - type: ExtensionRef
          extensionRef: {group: weft.dev, kind: FaultInjection, name: flaky}
      backendRefs: [{name: catalog-v1, weight: 90}, {name: catalog-v2, weight: 10}]
      timeouts: {request: 2s, backendRequest: 500ms}
      retry: {attempts: 2, on: [unavailable, resource-exhausted, connect-failure], backoff: 50ms}
    - matches: [{method: {service: shop.v1.Catalog}}]
      backendRefs: [{name: catalog-v1}]
`,
    "route.yaml",
  );
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0].spec, {
    parentRefs: [{ group: "", kind: "Service", name: "catalog" }],
    rules: [
      {
        name: "get-item",
        matches: [
          {
            method: { type: "Exact", service: "shop.v1.Catalog", method: "GetItem" },
            headers: [{ type: "Exact", name: "x-tenant", value: "acme" }],
          },
          { method: { type: "RegularExpression", method: "List.*" } },
        ],
        filters: [
          {
            type: "RequestHeaderModifier",
            requestHeaderModifier: { set: [{ name: "x-route", value: "grpc" }] },
          },
          {
            type: "RequestMirror",
            requestMirror: {
              backendRef: { group: "", kind: "Service", name: "catalog-shadow" },
              percent: 10,
            },
          },
          {
            type: "ExtensionRef",
            extensionRef: { group: "weft.dev", kind: "FaultInjection", name: "flaky" },
          },
        ],
        backendRefs: [
          { group: "", kind: "Service", name: "catalog-v1", weight: 90 },
          { group: "", kind: "Service", name: "catalog-v2", weight: 10 },
        ],
        timeouts: { request: "2s", backendRequest: "500ms" },
        retry: { attempts: 2, on: ["unavailable", "resource-exhausted", "connect-failure"], backoff: "50ms" },
      },
      {
        matches: [{ method: { type: "Exact", service: "shop.v1.Catalog" } }],
        backendRefs: [{ group: "", kind: "Service", name: "catalog-v1", weight: 1 }],
      },
    ],
  });
});

test("method matches: service or method required; exact names checked; regular expressions compiled", () => {
  assert.deepEqual(
    lines(`${HEAD}metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: catalog}]
  rules:
    - matches:
        - method: {}
        - method: {service: "shop/v1", method: "Get-Item"}
        - method: {type: RegularExpression, service: "(unclosed"}
        - method: {type: Prefix, service: a}
        - method: {service: a}
          path: {value: /x}
`),
    [
      "route.yaml:8:19: spec.rules[0].matches[0].method: must set service, method or both (omit method to match every call)",
      'route.yaml:9:29: spec.rules[0].matches[1].method.service: must be a fully qualified gRPC service name such as shop.v1.Catalog (got "shop/v1")',
      'route.yaml:9:48: spec.rules[0].matches[1].method.method: must be a gRPC method name such as GetItem (got "Get-Item")',
      'route.yaml:10:54: spec.rules[0].matches[2].method.service: must be a valid regular expression: Unterminated group (got "(unclosed")',
      'route.yaml:11:26: spec.rules[0].matches[3].method.type: must be one of "Exact", "RegularExpression" (got "Prefix")',
      'route.yaml:13:11: spec.rules[0].matches[4].path: unknown field "path" (known fields: method, headers)',
    ],
  );
});

test("GRPCRoute filters: only the four GRPCRoute allows; ExtensionRef names a FaultInjection", () => {
  assert.deepEqual(
    lines(`${HEAD}metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: catalog}]
  rules:
    - filters:
        - type: RequestRedirect
          requestRedirect: {statusCode: 301}
        - type: URLRewrite
          urlRewrite: {hostname: x}
        - type: ExtensionRef
          extensionRef: {group: example.com, kind: Other, name: x}
`),
    [
      'route.yaml:8:17: spec.rules[0].filters[0].type: filter type "RequestRedirect" is not available on GRPCRoute (GRPCRoute filters: RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef)',
      'route.yaml:10:17: spec.rules[0].filters[1].type: filter type "URLRewrite" is not available on GRPCRoute (GRPCRoute filters: RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef)',
      `route.yaml:13:33: spec.rules[0].filters[2].extensionRef.group: must be "weft.dev": weft's only extension filter is weft.dev/FaultInjection (apiVersion weft.dev/v1alpha1) (got "example.com")`,
      `route.yaml:13:52: spec.rules[0].filters[2].extensionRef.kind: must be "FaultInjection": weft's only extension filter is weft.dev/FaultInjection (apiVersion weft.dev/v1alpha1) (got "Other")`,
    ],
  );
});

test("GRPCRoute retry: gRPC conditions; HTTP codes and nonIdempotent refused with what to write instead", () => {
  assert.deepEqual(
    lines(`${HEAD}metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: catalog}]
  rules:
    - retry:
        attempts: 11
        on: [unavailable, unavailble, 5xx, unavailable]
        codes: [503]
        nonIdempotent: true
        backoff: 1s
        maxBackoff: 10ms
`),
    [
      "route.yaml:8:19: spec.rules[0].retry.attempts: must be an integer between 0 and 10 (got 11)",
      'route.yaml:9:27: spec.rules[0].retry.on[1]: must be one of "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable", "connect-failure", "reset", "timeout" (got "unavailble"); did you mean "unavailable"?',
      'route.yaml:9:39: spec.rules[0].retry.on[2]: must be one of "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable", "connect-failure", "reset", "timeout" (got "5xx")',
      'route.yaml:9:44: spec.rules[0].retry.on[3]: duplicate "unavailable" (also spec.rules[0].retry.on[0])',
      "route.yaml:10:9: spec.rules[0].retry.codes: HTTP status codes do not apply to gRPC calls: list gRPC statuses in `on` instead (cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)",
      "route.yaml:11:9: spec.rules[0].retry.nonIdempotent: does not apply to GRPCRoute: every gRPC call is a POST, and the statuses in `on` say what is safe to retry",
      'route.yaml:13:21: spec.rules[0].retry.maxBackoff: must be at least backoff (1s): it caps the growing delay (got "10ms")',
    ],
  );
});

test("GRPCRoute parentRefs and backendRefs are checked as HTTPRoute's; names may be subdomains", () => {
  assert.deepEqual(
    lines(`${HEAD}metadata: {name: catalog.v2}
spec:
  parentRefs: [{name: catalog}, {kind: Service, name: catalog}, {kind: Service, name: catalog}]
  rules:
    - backendRefs: [{name: Catalog_V1}]
      sessionPersistence: {}
`),
    [
      "route.yaml:5:16: spec.parentRefs[0].kind: is required: set kind: Service (weft attaches routes to Services; the Gateway API default, Gateway, is not supported)",
      "route.yaml:5:65: spec.parentRefs[2]: duplicate parentRef (also spec.parentRefs[1])",
      `route.yaml:7:28: spec.rules[0].backendRefs[0].name: must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit (got "Catalog_V1")`,
      'route.yaml:8:7: spec.rules[0].sessionPersistence: field "sessionPersistence" is not supported by weft yet',
    ],
  );
});
