import { test } from "node:test";
import assert from "node:assert/strict";
import { parseManifests } from "./parse.ts";
import { findDuplicates, validateManifestFiles, validateManifests, validateResource } from "./validate.ts";
import type { ValidResource } from "./validate.ts";
import { formatViolation, formatViolations } from "./violation.ts";

function lines(text: string, file = "t.yaml"): string[] {
  return validateManifests(text, file).violations.map(formatViolation);
}

test("formats a violation as file:line:column: path: message", () => {
  const v = {
    file: "routes.yaml",
    line: 12,
    column: 9,
    path: "spec.rules[0].backendRefs[1].weight",
    message: "bad",
  };
  assert.equal(formatViolation(v), "routes.yaml:12:9: spec.rules[0].backendRefs[1].weight: bad");
  assert.equal(formatViolation({ ...v, path: "" }), "routes.yaml:12:9: bad");
  assert.equal(
    formatViolations([
      { ...v, line: 20 },
      { ...v, line: 3, column: 7 },
    ]),
    "routes.yaml:3:7: spec.rules[0].backendRefs[1].weight: bad\nroutes.yaml:20:9: spec.rules[0].backendRefs[1].weight: bad",
  );
});

test("reports every violation in a file, in file order, across documents", () => {
  const text = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata:
  name: Reviews
spec:
  ports:
  - port: 70000
    protocol: udp
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs:
  - kind: Service
    name: reviews
  rules:
  - backendRefs:
    - name: reviews-v1
    - name: reviews-v2
      weight: -1
`;
  assert.deepEqual(lines(text, "routes.yaml"), [
    'routes.yaml:4:9: metadata.name: must be lowercase (a DNS-1123 label) (got "Reviews")',
    "routes.yaml:7:11: spec.ports[0].port: must be an integer between 1 and 65535 (got 70000)",
    'routes.yaml:8:15: spec.ports[0].protocol: must be one of "http", "http2", "grpc", "tcp" (got "udp")',
    "routes.yaml:22:15: spec.rules[0].backendRefs[1].weight: must be an integer between 0 and 1000000 (got -1)",
  ]);
});

test("violations name the resource they belong to", () => {
  const { violations } = validateManifests(
    "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: reviews-1}\nspec: {service: reviews}\n",
    "w.yaml",
  );
  assert.ok(violations.length >= 2);
  for (const v of violations) assert.deepEqual([v.kind, v.name], ["Workload", "reviews-1"]);
});

test("an unknown field is named, with the field it probably meant, at its key", () => {
  const text = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rulez:
  - backendRefs: [{name: reviews}]
  timeout: 5s
`;
  assert.deepEqual(lines(text), [
    't.yaml:6:3: spec.rulez: unknown field "rulez"; did you mean "rules"?',
    't.yaml:8:3: spec.timeout: unknown field "timeout" (known fields: parentRefs, hostnames, rules)',
  ]);
});

test("unknown top-level and metadata fields are rejected", () => {
  const text =
    "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: default, lables: {a: b}}\nstatus: {}\n";
  assert.deepEqual(lines(text), [
    't.yaml:3:27: metadata.lables: unknown field "lables"; did you mean "labels"?',
    't.yaml:4:1: status: field "status" cannot be applied: status is written by weft; remove it from the file',
  ]);
});

test("status is never applied: weft writes it, for every kind", () => {
  const workload =
    "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: w}\nspec: {service: a, address: 10.0.0.1, port: 80}\nstatus: {health: Healthy, since: '2026-01-01T00:00:00Z'}\n";
  const { resources, violations } = validateManifests(workload, "w.yaml");
  assert.deepEqual(resources, []);
  assert.deepEqual(violations.map(formatViolation), [
    'w.yaml:5:1: status: field "status" cannot be applied: status is written by weft; remove it from the file',
  ]);
  const policy =
    "apiVersion: weft.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: p}\nspec: {targetRef: {kind: Service, name: a}}\nstatus: {}\n";
  assert.deepEqual(lines(policy), [
    't.yaml:5:1: status: field "status" cannot be applied: status is written by weft; remove it from the file',
  ]);
});

test("kind must be known; close misspellings and planned kinds get their own message", () => {
  const [typo] = lines("apiVersion: weft.dev/v1alpha1\nkind: Servce\nmetadata: {name: a}\n");
  assert.equal(
    typo,
    't.yaml:2:7: kind: unknown kind "Servce"; did you mean "Service"? (known kinds: Mesh, Service, Workload, HTTPRoute, GRPCRoute, TrafficPolicy, FaultInjection, ReferenceGrant)',
  );
  const [planned] = lines("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: a}\n");
  assert.match(planned, /kind "Gateway" is not supported by weft yet/);
  assert.deepEqual(lines("apiVersion: weft.dev/v1alpha1\nmetadata: {name: a}\n"), [
    "t.yaml:1:1: kind: is required: one of Mesh, Service, Workload, HTTPRoute, GRPCRoute, TrafficPolicy, FaultInjection, ReferenceGrant",
  ]);
});

test("apiVersion must match the kind", () => {
  assert.deepEqual(lines("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"), [
    't.yaml:1:13: apiVersion: must be "weft.dev/v1alpha1" for kind Service (got "v1")',
  ]);
  assert.deepEqual(
    lines("kind: HTTPRoute\nmetadata: {name: a}\nspec: {parentRefs: [{kind: Service, name: a}]}\n"),
    [
      't.yaml:1:1: apiVersion: is required: use "gateway.networking.k8s.io/v1" or "gateway.networking.k8s.io/v1beta1" for kind HTTPRoute',
    ],
  );
  assert.deepEqual(
    lines(
      "apiVersion: weft.dev/v1alpha1\nkind: HTTPRoute\nmetadata: {name: a}\nspec: {parentRefs: [{kind: Service, name: a}]}\n",
    ),
    [
      't.yaml:1:13: apiVersion: must be "gateway.networking.k8s.io/v1" or "gateway.networking.k8s.io/v1beta1" for kind HTTPRoute (got "weft.dev/v1alpha1")',
    ],
  );
});

test("metadata: name required, namespace and labels checked, namespace defaulted", () => {
  assert.deepEqual(lines("apiVersion: weft.dev/v1alpha1\nkind: Service\n"), [
    "t.yaml:1:1: metadata: is required",
  ]);
  assert.deepEqual(
    lines(
      "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata:\n  namespace: Shop\n  labels:\n    weft.dev/x y: v\n    ok: -bad\n",
    ),
    [
      "t.yaml:3:1: metadata.name: is required",
      't.yaml:4:14: metadata.namespace: must be lowercase (a DNS-1123 label) (got "Shop")',
      "t.yaml:6:5: metadata.labels[\"weft.dev/x y\"]: invalid key \"weft.dev/x y\": name part must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
      "t.yaml:7:9: metadata.labels.ok: must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"-bad\")",
    ],
  );
  const { resources } = validateManifests(
    "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a, labels: {tier: backend}, annotations: {note: any text at all}}\n",
    "f",
  );
  assert.deepEqual(resources[0].metadata, {
    name: "a",
    namespace: "default",
    labels: { tier: "backend" },
    annotations: { note: "any text at all" },
  });
});

test("JSON input is validated with JSON positions", () => {
  const json = `{
  "apiVersion": "weft.dev/v1alpha1",
  "kind": "Service",
  "metadata": {"name": "ratings"},
  "spec": {"ports": [{"port": 9080}, {"port": "9081"}]}
}`;
  assert.deepEqual(lines(json, "svc.json"), [
    'svc.json:5:47: spec.ports[1].port: must be an integer between 1 and 65535 (got "9081")',
  ]);
  const ok = validateManifests(json.replace('"9081"', "9081"), "svc.json");
  assert.deepEqual(ok.violations, []);
  assert.deepEqual(ok.resources[0].spec, {
    ports: [
      { port: 9080, protocol: "http" },
      { port: 9081, protocol: "http" },
    ],
  });
});

test("syntax errors and validation errors come back together", () => {
  const text =
    "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a\n---\napiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: B}\n";
  const out = lines(text);
  assert.equal(out.length, 2);
  assert.match(out[0], /^t\.yaml:4:1: invalid YAML: /);
  assert.match(out[1], /^t\.yaml:7:18: metadata\.name: must be lowercase/);
});

test("duplicates in one apply are reported at the repeat, pointing at the first", () => {
  const svc = (ns: string) =>
    `apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata:\n  name: reviews\n  namespace: ${ns}\n`;
  const text = [svc("default"), svc("shop"), svc("default")].join("---\n");
  const { resources, violations } = validateManifests(text, "s.yaml");
  assert.equal(resources.length, 3);
  assert.deepEqual(violations.map(formatViolation), [
    "s.yaml:16:9: metadata.name: duplicate Service default/reviews; first defined at s.yaml:4:9",
  ]);
  const mesh = "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: default}\n";
  assert.deepEqual(lines(`${mesh}---\n${mesh}`), [
    "t.yaml:7:18: metadata.name: only one Mesh is allowed; first defined at t.yaml:3:18",
  ]);
});

test("findDuplicates works across files", () => {
  const entries: ValidResource[] = [];
  for (const file of ["a.yaml", "b.yaml"]) {
    for (const parsed of parseManifests(
      "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: x}\n",
      file,
    ).resources) {
      const { resource } = validateResource(parsed);
      assert.ok(resource);
      entries.push({ resource, parsed });
    }
  }
  assert.deepEqual(findDuplicates(entries).map(formatViolation), [
    "b.yaml:3:18: metadata.name: duplicate Service default/x; first defined at a.yaml:3:18",
  ]);
});

test("validateResource returns no resource when anything is wrong", () => {
  const [parsed] = parseManifests(
    "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 0}]}\n",
    "f",
  ).resources;
  const r = validateResource(parsed);
  assert.equal(r.resource, undefined);
  assert.equal(r.violations.length, 1);
});

test("store-written metadata round-trips", () => {
  const { resources, violations } = validateManifests(
    "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: default, resourceVersion: '42', creationTimestamp: '2025-01-01T00:00:00Z'}\n",
    "f",
  );
  assert.deepEqual(violations, []);
  assert.equal(resources[0].metadata.resourceVersion, "42");
});

test("validateManifestFiles: a resource defined in two files of one apply is reported where it repeats", () => {
  const svc = "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata:\n  name: orders\nspec: {}\n";
  const { violations } = validateManifestFiles([
    { name: "a.yaml", content: svc },
    { name: "b.yaml", content: "# repeated\n" + svc },
  ]);
  assert.equal(violations.length, 1);
  assert.equal(
    formatViolation(violations[0]),
    "b.yaml:5:9: metadata.name: duplicate Service default/orders; first defined at a.yaml:4:9",
  );
});
