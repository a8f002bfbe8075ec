// Keeps the guides honest: every YAML example in README.md, docs/traffic.md, docs/balancing.md and
// docs/proxy.md must pass validation. Whole manifests are validated as they are; a fragment of a
// route (`rules:` or a rule's own fields such as `retry:`) is completed into an HTTPRoute first, and
// a `spec:` with a targetRef into a TrafficPolicy.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const DOCS = ["../../README.md", "../../docs/traffic.md", "../../docs/balancing.md", "../../docs/proxy.md"];

const ROUTE_HEAD =
  "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: example}\nspec:\n  parentRefs: [{kind: Service, name: example}]\n";

function yamlBlocks(markdown: string): { yaml: string; line: number }[] {
  const out: { yaml: string; line: number }[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "```yaml") continue;
    const start = i + 1;
    while (lines[++i].trim() !== "```");
    out.push({ yaml: lines.slice(start, i).join("\n") + "\n", line: start + 1 });
  }
  return out;
}

function complete(yaml: string): string {
  if (yaml.includes("apiVersion:")) return yaml;
  const indent = (text: string, by: string) => text.replace(/^(?=.)/gm, by);
  if (yaml.startsWith("rules:")) return ROUTE_HEAD + indent(yaml, "  ");
  if (yaml.startsWith("spec:") && yaml.includes("targetRef:"))
    return `apiVersion: weft.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: example}\n${yaml}`;
  // A rule's fields (retry:, timeouts:, filters:): one rule with a backend.
  return `${ROUTE_HEAD}  rules:\n    - backendRefs: [{name: example}]\n${indent(yaml, "      ")}`;
}

for (const doc of DOCS) {
  test(`every YAML example in ${doc.slice(6)} is valid`, () => {
    const url = new URL(doc, import.meta.url);
    const blocks = yamlBlocks(readFileSync(url, "utf8"));
    for (const { yaml, line } of blocks) {
      const { violations, resources } = validateManifests(complete(yaml), `${doc.slice(6)}:${line}`);
      assert.deepEqual(violations.map(formatViolation), [], `example at ${doc.slice(6)} line ${line}`);
      assert.ok(resources.length > 0);
    }
  });
}
