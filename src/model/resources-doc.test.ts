// Keeps docs/resources.md honest: every YAML example in it must pass validation.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const DOC = new URL("../../docs/resources.md", import.meta.url);

const HEADS: Record<string, string> = {
  Mesh: "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: default}\n",
  Service: "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: example}\n",
  Workload: "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: example}\n",
  HTTPRoute: "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: example}\n",
  GRPCRoute: "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: example}\n",
  TrafficPolicy: "apiVersion: weft.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: example}\n",
  FaultInjection: "apiVersion: weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: example}\n",
  ReferenceGrant:
    "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: example}\n",
};

/** YAML blocks with the `## Kind` section they appear in. */
function examples(markdown: string): { section: string; yaml: string; line: number }[] {
  const out: { section: string; yaml: string; line: number }[] = [];
  let section = "";
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith("## ")) section = lines[i].slice(3).trim();
    if (lines[i].trim() !== "```yaml") continue;
    const start = i + 1;
    while (lines[++i].trim() !== "```");
    out.push({ section, yaml: lines.slice(start, i).join("\n") + "\n", line: start + 1 });
  }
  return out;
}

/** A fragment (`spec:`, `rules:`) becomes a whole resource of its section's kind. */
function complete(section: string, yaml: string): string {
  if (yaml.includes("apiVersion:")) return yaml;
  const head = HEADS[section];
  assert.ok(head, `example in section ${JSON.stringify(section)} is a fragment of no known kind`);
  if (yaml.startsWith("rules:")) {
    const indented = yaml.replace(/^(?=.)/gm, "  ");
    return `${head}spec:\n  parentRefs: [{kind: Service, name: example}]\n${indented}`;
  }
  if (yaml.includes("metadata:")) return head.replace(/metadata: .*\n/, "") + yaml;
  return head + yaml;
}

test("every YAML example in docs/resources.md is valid", () => {
  const found = examples(readFileSync(DOC, "utf8"));
  assert.ok(found.length >= 12, `expected many examples, found ${found.length}`);
  for (const { section, yaml, line } of found) {
    const { violations, resources } = validateManifests(complete(section, yaml), `resources.md:${line}`);
    assert.deepEqual(violations.map(formatViolation), [], `example at docs/resources.md line ${line}`);
    assert.ok(resources.length > 0);
  }
});
