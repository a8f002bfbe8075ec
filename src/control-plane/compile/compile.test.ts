// Golden-file tests: each testdata/<case>.yaml holds resources (and, in comments, which proxy to
// compile for); testdata/<case>.golden.json is what that proxy receives. Regenerate after an
// intended change with UPDATE_GOLDEN=1 and review the diff.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { AnyResource, HTTPRoute, Mesh, Service, Workload } from "../../model/resources.ts";
import { validateManifests } from "../../model/validate.ts";
import { compileSnapshot, type MeshState } from "./compile.ts";

const dir = join(import.meta.dirname, "testdata");

function load(file: string): { state: MeshState; proxy: Workload; reach?: string[] } {
  const text = readFileSync(join(dir, file), "utf8");
  const { resources, violations } = validateManifests(text, file);
  assert.deepEqual(violations, [], `testdata ${file} must be valid`);
  const stamped = resources.map((r, i) => ({
    ...r,
    metadata: { ...r.metadata, creationTimestamp: `2026-01-01T00:00:${String(i).padStart(2, "0")}Z` },
  })) as AnyResource[];
  const of = <T extends AnyResource>(k: string) => stamped.filter((r) => r.kind === k) as T[];
  const state: MeshState = {
    mesh: of<Mesh>("Mesh")[0],
    services: of<Service>("Service"),
    workloads: of<Workload>("Workload"),
    routes: of<HTTPRoute>("HTTPRoute"),
  };
  const proxyName = text.match(/^# proxy: (\S+)/m)?.[1];
  const proxy = state.workloads.find((w) => w.metadata.name === proxyName);
  assert.ok(proxy, `${file}: "# proxy:" must name a Workload`);
  const reach = text
    .match(/^# reach: (.+)$/m)?.[1]
    .split(",")
    .map((s) => s.trim());
  return { state, proxy, reach };
}

for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml"))) {
  test(`compiles ${file} as in its golden file`, () => {
    const { state, proxy, reach } = load(file);
    const snapshot = compileSnapshot(state, { workload: proxy, appPort: 8080, reach });
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
