import { test } from "node:test";
import assert from "node:assert/strict";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const HEAD = "apiVersion: weft.dev/v1alpha1\nkind: Workload\n";
const lines = (text: string) => validateManifests(text, "wl.yaml").violations.map(formatViolation);

test("a static Workload (no sidecar) needs service, address and port", () => {
  const text = `${HEAD}metadata:\n  name: ratings-db\n  labels: {version: v1}\nspec:\n  service: ratings\n  address: db.internal\n  port: 5432\n`;
  const { resources, violations } = validateManifests(text, "wl.yaml");
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0], {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Workload",
    metadata: { name: "ratings-db", namespace: "default", labels: { version: "v1" } },
    spec: { service: "ratings", address: "db.internal", port: 5432 },
  });
});

test("a sidecar-fronted Workload carries a SPIFFE identity and may name a zone and IPv6 address", () => {
  const text = `${HEAD}metadata:
  name: reviews-7f9c
  labels: {weft.dev/service: reviews, version: v2}
spec:
  service: reviews
  address: "fd00::17"
  port: 15006
  identity: spiffe://weft.local/ns/default/sa/reviews
  zone: eu-west-1a
`;
  const { resources, violations } = validateManifests(text, "wl.yaml");
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0].spec, {
    service: "reviews",
    address: "fd00::17",
    port: 15006,
    identity: "spiffe://weft.local/ns/default/sa/reviews",
    zone: "eu-west-1a",
  });
});

test("missing required fields point at spec", () => {
  assert.deepEqual(lines(`${HEAD}metadata: {name: w}\nspec:\n  zone: a\n`), [
    "wl.yaml:4:1: spec.address: is required",
    "wl.yaml:4:1: spec.port: is required",
    "wl.yaml:4:1: spec.service: is required",
  ]);
  assert.deepEqual(lines(`${HEAD}metadata: {name: w}\n`), ["wl.yaml:1:1: spec: is required"]);
});

test("invalid address, port, identity and a conflicting service label are all reported", () => {
  const text = `${HEAD}metadata:
  name: w
  labels:
    weft.dev/service: ratings
spec:
  service: reviews
  address: 10.0.0.7:9080
  port: "9080"
  identity: https://weft.local/reviews
  zone: ""
`;
  assert.deepEqual(lines(text), [
    'wl.yaml:6:23: metadata.labels["weft.dev/service"]: must equal spec.service ("reviews") or be omitted (got "ratings")',
    'wl.yaml:9:12: spec.address: must be an IP address or host name, without a port (the port goes in spec.port) (got "10.0.0.7:9080")',
    'wl.yaml:10:9: spec.port: must be an integer between 1 and 65535 (got "9080")',
    'wl.yaml:11:13: spec.identity: must be a SPIFFE ID starting with spiffe:// (got "https://weft.local/reviews")',
    'wl.yaml:12:9: spec.zone: must not be empty (got "")',
  ]);
});
