import { test } from "node:test";
import assert from "node:assert/strict";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const HEAD = "apiVersion: weft.dev/v1alpha1\nkind: Mesh\n";

test("a Mesh with no spec gets every default", () => {
  const { resources, violations } = validateManifests(`${HEAD}metadata:\n  name: default\n`, "mesh.yaml");
  assert.deepEqual(violations, []);
  assert.deepEqual(resources, [
    {
      apiVersion: "weft.dev/v1alpha1",
      kind: "Mesh",
      metadata: { name: "default", namespace: "default" },
      spec: { trustDomain: "weft.local", mtls: { mode: "STRICT" } },
    },
  ]);
});

test("a Mesh keeps the trust domain and mTLS mode it is given", () => {
  const text = `${HEAD}metadata: {name: default}\nspec:\n  trustDomain: prod.example.com\n  mtls:\n    mode: PERMISSIVE\n`;
  const { resources, violations } = validateManifests(text, "mesh.yaml");
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0].spec, { trustDomain: "prod.example.com", mtls: { mode: "PERMISSIVE" } });
});

test("an invalid Mesh reports name, namespace, trust domain and mode together", () => {
  const text = `${HEAD}metadata:
  name: prod
  namespace: shop
spec:
  trustDomain: Prod.Example
  mtls:
    mode: strict
    minVersion: "1.3"
`;
  assert.deepEqual(validateManifests(text, "mesh.yaml").violations.map(formatViolation), [
    'mesh.yaml:4:9: metadata.name: must be "default": a mesh has exactly one Mesh resource (got "prod")',
    'mesh.yaml:5:14: metadata.namespace: must be omitted: a Mesh applies to every namespace (got "shop")',
    "mesh.yaml:7:16: spec.trustDomain: must be lowercase letters, digits, '.', '-' and '_' (got \"Prod.Example\")",
    'mesh.yaml:9:11: spec.mtls.mode: must be one of "STRICT", "PERMISSIVE" (got "strict"); did you mean "STRICT"?',
    'mesh.yaml:10:5: spec.mtls.minVersion: unknown field "minVersion" (known fields: mode)',
  ]);
});

test("a Mesh spec must be a mapping", () => {
  assert.deepEqual(
    validateManifests(`${HEAD}metadata: {name: default}\nspec: [STRICT]\n`, "m").violations.map(
      formatViolation,
    ),
    ["m:4:7: spec: must be a mapping (got a list)"],
  );
});
