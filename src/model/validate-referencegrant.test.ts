import { test } from "node:test";
import assert from "node:assert/strict";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const HEAD = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n";
const lines = (text: string) => validateManifests(text, "grant.yaml").violations.map(formatViolation);

test("a ReferenceGrant opens Services (one, or all) to routes from other namespaces; v1 and v1beta1", () => {
  const { resources, violations } = validateManifests(
    `${HEAD}metadata: {name: shop-to-billing, namespace: billing}
spec:
  from:
    - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}
    - {group: gateway.networking.k8s.io, kind: GRPCRoute, namespace: shop}
  to: [{group: "", kind: Service, name: payments}, {group: core, kind: Service}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: all.of.them}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: ops}]
  to: [{group: "", kind: Service}]
`,
    "grant.yaml",
  );
  assert.deepEqual(violations.map(formatViolation), []);
  assert.deepEqual(resources[0].spec, {
    from: [
      { group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "shop" },
      { group: "gateway.networking.k8s.io", kind: "GRPCRoute", namespace: "shop" },
    ],
    to: [
      { group: "", kind: "Service", name: "payments" },
      { group: "", kind: "Service" },
    ],
  });
  assert.equal(resources[1].metadata.namespace, "default");
});

test("hostile and mistaken grants: every violation with its path, kinds weft does not read told apart", () => {
  assert.deepEqual(
    lines(`${HEAD}metadata: {name: a, namespace: billing}
spec:
  from:
    - {group: "", kind: HTTPRoute, namespace: shop}
    - {group: gateway.networking.k8s.io, kind: Gateway, namespace: edge}
    - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: "Shop!"}
    - {group: gateway.networking.k8s.io, kind: HTTPRoute}
    - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}
    - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}
  to:
    - {group: "", kind: Secret}
    - {group: apps, kind: Deployment, nam: web}
    - {kind: Service, name: "../etc"}
---
${HEAD}metadata: {name: b}
spec: {from: [], to: "everything"}
---
${HEAD}metadata: {name: c}
spec: {}
`),
    [
      'grant.yaml:6:15: spec.from[0].group: must be "gateway.networking.k8s.io": routes are the only kinds whose references weft checks against grants (got "")',
      'grant.yaml:7:48: spec.from[1].kind: kind "Gateway" is not supported by weft yet (supported: HTTPRoute, GRPCRoute) (got "Gateway")',
      "grant.yaml:8:70: spec.from[2].namespace: must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit (got \"Shop!\")",
      "grant.yaml:9:7: spec.from[3].namespace: is required",
      "grant.yaml:11:7: spec.from[5]: duplicate entry (also spec.from[4])",
      'grant.yaml:13:25: spec.to[0].kind: kind "Secret" is not supported by weft yet (supported: Service) (got "Secret")',
      'grant.yaml:14:15: spec.to[1].group: must be "" (the core group, where Service lives) (got "apps")',
      'grant.yaml:14:27: spec.to[1].kind: must be "Service": weft routes to Services (got "Deployment")',
      'grant.yaml:14:39: spec.to[1].nam: unknown field "nam"; did you mean "name"?',
      "grant.yaml:15:7: spec.to[2].group: is required",
      "grant.yaml:15:29: spec.to[2].name: must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit (got \"../etc\")",
      "grant.yaml:20:14: spec.from: must have at least 1 item",
      'grant.yaml:20:22: spec.to: must be a list (got "everything")',
      "grant.yaml:25:1: spec.from: is required",
      "grant.yaml:25:1: spec.to: is required",
    ],
  );
});
