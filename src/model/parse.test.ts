import { test } from "node:test";
import assert from "node:assert/strict";
import { parseManifests } from "./parse.ts";

const TWO_DOCS = `# services
apiVersion: weft.dev/v1alpha1
kind: Service
metadata:
  name: reviews
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
      weight: 90
    -   name: reviews-v2
        weight: -1
`;

test("a nested field in the second document maps to its line and column", () => {
  const { resources, errors } = parseManifests(TWO_DOCS, "routes.yaml");
  assert.deepEqual(errors, []);
  assert.equal(resources.length, 2);
  const route = resources[1];
  assert.equal(route.doc, 1);
  assert.equal(route.file, "routes.yaml");
  assert.deepEqual(route.pos("spec.rules[0].backendRefs[1].weight"), { line: 20, column: 17 });
  assert.deepEqual(route.pos("spec.rules[0].backendRefs[0].weight"), { line: 18, column: 15 });
  assert.deepEqual(route.pos(["spec", "rules", 0, "backendRefs", 1, "name"]), { line: 19, column: 15 });
  // The key rather than the value, as unknown-field violations want.
  assert.deepEqual(route.pos("spec.rules[0].backendRefs[1].weight", { key: true }), { line: 20, column: 9 });
  assert.deepEqual(resources[0].pos("metadata.name"), { line: 5, column: 9 });
});

test("a missing field points at its nearest existing parent", () => {
  const route = parseManifests(TWO_DOCS, "routes.yaml").resources[1];
  // parentRefs[0] exists (line 13, at `kind`); its port does not.
  assert.deepEqual(route.pos("spec.parentRefs[0].port"), { line: 13, column: 5 });
  // rules[0].matches does not exist: point at rules[0].
  assert.deepEqual(route.pos("spec.rules[0].matches[0].path"), { line: 16, column: 5 });
  // Missing under a mapping entry: the line naming the parent (`metadata:`).
  assert.deepEqual(route.pos("metadata.namespace"), { line: 9, column: 1 });
  // Index past the end of a list: the list's entry.
  assert.deepEqual(route.pos("spec.rules[3]"), { line: 15, column: 3 });
  // Missing top-level field: the document's start.
  assert.deepEqual(parseManifests(TWO_DOCS, "f").resources[0].pos("spec"), { line: 2, column: 1 });
});

test("an empty value (`port:`) points at its key", () => {
  const [r] = parseManifests("kind: Service\nspec:\n  ports:\n  - port:\n", "f").resources;
  assert.deepEqual(r.pos("spec.ports[0].port"), { line: 4, column: 5 });
});

test("YAML syntax errors are reported at the position yaml gives, and other documents still parse", () => {
  const text =
    "kind: Service\nmetadata:\n  name: a\n---\nkind: Service\nmetadata:\n  name: [a, b\nspec: {}\n---\nkind: Workload\n";
  const { resources, errors } = parseManifests(text, "bad.yaml");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].file, "bad.yaml");
  assert.equal(errors[0].line, 8);
  assert.equal(errors[0].column, 1);
  assert.match(errors[0].message, /^invalid YAML: /);
  assert.deepEqual(
    resources.map((r) => [r.doc, r.resource.kind]),
    [
      [0, "Service"],
      [2, "Workload"],
    ],
  );
});

test("duplicate keys are a syntax error at the second key", () => {
  const { resources, errors } = parseManifests("kind: Service\nmetadata:\n  name: a\n  name: b\n", "f.yaml");
  assert.equal(resources.length, 0);
  assert.deepEqual(
    errors.map((e) => [e.line, e.column]),
    [[4, 3]],
  );
  assert.match(errors[0].message, /unique/);
});

test("JSON input parses with positions", () => {
  const json = `{
  "apiVersion": "weft.dev/v1alpha1",
  "kind": "Workload",
  "metadata": {"name": "reviews-1"},
  "spec": {"service": "reviews", "address": "10.0.0.7", "port": 15006}
}`;
  const { resources, errors } = parseManifests(json, "w.json");
  assert.deepEqual(errors, []);
  assert.equal(resources.length, 1);
  assert.deepEqual(resources[0].resource.spec, { service: "reviews", address: "10.0.0.7", port: 15006 });
  assert.deepEqual(resources[0].pos("spec.port"), { line: 5, column: 65 });
});

test("empty documents are skipped but still counted in doc indexes", () => {
  const text = "---\n# nothing here\n---\n---\nkind: Mesh\n---\n\n";
  const { resources, errors } = parseManifests(text, "f");
  assert.deepEqual(errors, []);
  assert.deepEqual(
    resources.map((r) => r.doc),
    [2],
  );
  assert.deepEqual(parseManifests("", "f"), { resources: [], errors: [] });
});

test("a kind: List yields its items, with positions inside each item", () => {
  const text = `apiVersion: v1
kind: List
items:
- kind: Service
  metadata: {name: a}
- kind: Service
  metadata:
    name: b
- 42
`;
  const { resources, errors } = parseManifests(text, "list.yaml");
  assert.deepEqual(
    resources.map((r) => [r.item, (r.resource.metadata as { name: string }).name]),
    [
      [0, "a"],
      [1, "b"],
    ],
  );
  assert.deepEqual(resources[1].pos("metadata.name"), { line: 8, column: 11 });
  assert.deepEqual(resources[0].pos("kind"), { line: 4, column: 9 });
  assert.equal(errors.length, 1);
  assert.equal(errors[0].path, "items[2]");
  assert.equal(errors[0].line, 9);
  assert.match(errors[0].message, /must be a resource.*got 42/);
});

test("a List with unknown fields or non-list items is reported; one without items is empty", () => {
  const { errors } = parseManifests("kind: List\nitem: []\n---\nkind: List\nitems: {a: 1}\n", "f");
  assert.deepEqual(
    errors.map((e) => [e.line, e.column, e.path]),
    [
      [2, 1, "item"],
      [5, 8, "items"],
    ],
  );
  assert.match(errors[0].message, /unknown field "item".*did you mean "items"/);
  assert.deepEqual(parseManifests("kind: List\n", "f"), { resources: [], errors: [] });
});

test("a top-level list of resources is accepted", () => {
  const { resources, errors } = parseManifests('[{"kind": "Service"}, {"kind": "Mesh"}]', "f.json");
  assert.deepEqual(errors, []);
  assert.deepEqual(
    resources.map((r) => r.resource.kind),
    ["Service", "Mesh"],
  );
  assert.deepEqual(resources[1].pos("kind"), { line: 1, column: 32 });
});

test("a document that is not a mapping is reported", () => {
  const { resources, errors } = parseManifests("kind: Mesh\n---\njust text\n", "f");
  assert.equal(resources.length, 1);
  assert.deepEqual([errors[0].line, errors[0].column], [3, 1]);
  assert.match(errors[0].message, /must be a resource.*got "just text"/);
});

test("aliases and merge keys resolve, and positions follow them to the anchor", () => {
  const text = `kind: Service
defaults: &d
  protocol: http
spec:
  ports:
  - <<: *d
    port: 80
`;
  const [r] = parseManifests(text, "f").resources;
  assert.deepEqual((r.resource.spec as { ports: unknown[] }).ports, [{ protocol: "http", port: 80 }]);
  assert.deepEqual(r.pos("spec.ports[0].protocol"), { line: 3, column: 13 });
  assert.deepEqual(r.pos("spec.ports[0].port"), { line: 7, column: 11 });
});

test("alias bombs are reported, not expanded", () => {
  const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 0; i < 8; i++) {
    const prev = String.fromCharCode(97 + i);
    const next = String.fromCharCode(98 + i);
    lines.push(
      `${next}: &${next} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
    );
  }
  const { resources, errors } = parseManifests(lines.join("\n"), "bomb.yaml");
  assert.equal(resources.length, 0);
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /invalid YAML: .*alias/i);
});

test("unknown tags are reported rather than silently read as strings", () => {
  const { resources, errors } = parseManifests("kind: Service\nspec: !custom {}\n", "f");
  assert.equal(resources.length, 0);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].line, 2);
  assert.match(errors[0].message, /tag/i);
});
