// The guided scenarios in demo/try/: each file must pass weft's own validator (what `weft apply`
// runs), refer only to Services the demo defines (demo/mesh/), and open with a header that says
// what to run first, how to apply it, what to watch and how to undo it — with commands that
// actually undo what the file applies. And every scenario a document or the summary names exists.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { AnyResource } from "../src/model/resources.ts";
import { validateManifestFiles, validateManifests } from "../src/model/validate.ts";
import { formatViolation } from "../src/model/violation.ts";
import { chaosQuery } from "./chaos.ts";
import { REPO_DIR } from "./weft-cli.ts";
import { SERVICES } from "./workloads.ts";

const TRY_DIR = join(REPO_DIR, "demo", "try");
const MESH_DIR = join(REPO_DIR, "demo", "mesh");
const files = readdirSync(TRY_DIR)
  .filter((f) => f.endsWith(".yaml"))
  .sort();

const mesh = validateManifestFiles(
  readdirSync(MESH_DIR).map((f) => ({ name: f, content: readFileSync(join(MESH_DIR, f), "utf8") })),
);
const meshServices = new Set(mesh.resources.filter((r) => r.kind === "Service").map((r) => r.metadata.name));
const ROWS = ["storefront", "catalog", "reviews", "ratings"];

/** The comment block a file opens with, as { First?, Apply, Watch, Undo } (continuation lines joined). */
function headerSections(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let current: string | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith("#")) break;
    const body = line.replace(/^#\s?/, "");
    const m = /^([A-Z][a-z]+):\s+(.*)$/.exec(body);
    if (m && ["First", "Apply", "Watch", "Undo"].includes(m[1])) {
      current = m[1];
      out[current] = m[2];
    } else if (current) out[current] += ` ${body.trim()}`;
    else out.About = `${out.About ?? ""} ${body.trim()}`.trim();
  }
  return out;
}

/** Every Service a resource refers to (parents, backends, mirrors, policy targets). */
function serviceRefs(r: AnyResource): string[] {
  if (r.kind === "TrafficPolicy") return [r.spec.targetRef.name];
  if (r.kind !== "HTTPRoute") return [];
  const refs = r.spec.parentRefs.map((p) => p.name);
  for (const rule of r.spec.rules ?? []) {
    for (const b of rule.backendRefs ?? []) refs.push(b.name);
    for (const f of rule.filters ?? []) if (f.requestMirror) refs.push(f.requestMirror.backendRef.name);
  }
  return refs;
}

test("demo/try has the guided scenarios", () => {
  for (const f of [
    "canary-1-90-10.yaml",
    "canary-2-50-50.yaml",
    "canary-3-v2-only.yaml",
    "reviews-by-header.yaml",
    "mirror-to-v3.yaml",
    "fault-ratings.yaml",
    "retry-reviews.yaml",
    "outlier-reviews.yaml",
    "circuit-breaker-ratings.yaml",
    "rate-limit-catalog.yaml",
  ])
    assert.ok(files.includes(f), `demo/try/${f} exists`);
});

for (const file of files) {
  test(`demo/try/${file}: valid, refers to the demo's Services, and its header says how to use it`, () => {
    const text = readFileSync(join(TRY_DIR, file), "utf8");
    const { resources, violations } = validateManifests(text, `demo/try/${file}`);
    assert.deepEqual(violations.map(formatViolation), [], "the validator accepts it");
    assert.ok(resources.length > 0, "it defines something");

    for (const r of resources)
      for (const name of serviceRefs(r))
        assert.ok(
          meshServices.has(name),
          `${r.kind} ${r.metadata.name} refers to Service ${name}, defined in demo/mesh`,
        );
    const faults = new Set(resources.filter((r) => r.kind === "FaultInjection").map((r) => r.metadata.name));
    for (const r of resources)
      if (r.kind === "HTTPRoute")
        for (const rule of r.spec.rules ?? [])
          for (const f of rule.filters ?? [])
            if (f.extensionRef)
              assert.ok(
                faults.has(f.extensionRef.name),
                `the FaultInjection ${f.extensionRef.name} is in the same file`,
              );

    const h = headerSections(text);
    assert.ok(h.About && h.About.length > 20, "the first line says what it does");
    assert.ok(
      h.Apply?.includes(`weft apply -f demo/try/${file}`),
      `Apply: gives the exact command (${h.Apply})`,
    );
    assert.ok(h.Watch, "Watch: says what to look at");
    assert.ok(
      ROWS.some((row) => h.Watch.includes(row)),
      `Watch: names a row of the summary (${h.Watch})`,
    );
    assert.match(h.Watch, /~|\d/, "Watch: says roughly to what");
    assert.ok(h.Undo, "Undo: says how to undo it");
    // The Undo commands remove everything the file applied.
    for (const r of resources) {
      assert.ok(
        h.Undo.includes(`weft delete -f demo/try/${file}`) ||
          h.Undo.includes(`weft delete ${r.kind.toLowerCase()} ${r.metadata.name}`),
        `Undo: deletes ${r.kind} ${r.metadata.name} (${h.Undo})`,
      );
    }
    // A scenario that breaks an app first says how, with settings the chaos switch accepts, and
    // undoes it.
    const chaos = [...(h.First ?? "").matchAll(/weft demo chaos (\S+) ([^()]+?)(?:\s{2,}|\(|$)/g)];
    for (const [, workload, settings] of chaos) {
      assert.ok(
        SERVICES.some((s) => s.name === workload),
        `First: ${workload} is a demo workload`,
      );
      assert.doesNotThrow(
        () => chaosQuery(settings.trim().split(/\s+/)),
        `First: "${settings}" are valid chaos settings`,
      );
      assert.ok(h.Undo.includes(`weft demo chaos ${workload} reset`), `Undo: resets ${workload}'s chaos`);
    }
    if (/chaos/.test(h.Watch + h.Apply)) assert.ok(chaos.length > 0, "chaos is set up in First:");
  });
}

test("every demo/try file that the docs, the summary or the tests name exists, and docs/demo.md covers them all", () => {
  const sources = ["docs/demo.md", "demo/summary.ts", "demo/demo.test.ts", "README.md"];
  for (const src of sources) {
    const text = readFileSync(join(REPO_DIR, src), "utf8");
    for (const m of text.matchAll(/try\/([\w.-]+\.yaml)/g))
      assert.ok(files.includes(m[1]), `${src} names demo/try/${m[1]}, which exists`);
  }
  const docs = readFileSync(join(REPO_DIR, "docs", "demo.md"), "utf8");
  for (const f of files) assert.ok(docs.includes(`demo/try/${f}`), `docs/demo.md mentions demo/try/${f}`);
});
