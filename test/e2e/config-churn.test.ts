// Config churn with memory bounds (issue 6, hole 5), against a real control plane and a real sidecar
// (with a 64 MB heap): N Services applied, then deleted one by one. The control plane must not pile up
// snapshots for a sidecar that is behind, the sidecar must keep up, its per-service cost must stay
// small, and both must give the memory back once the config has shrunk. Bigger N, with a report:
// `node bench/config-churn.ts --n 10000` (docs/architecture.md has figures).

import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { test } from "node:test";
import { mb, runConfigChurn, type HeapSample } from "../helpers/config-churn.ts";
import { tempDir } from "../helpers/processes.ts";

const N = 1000;
const held = (h: HeapSample) => h.heapUsed + h.external;

test(`${N} Services applied and deleted one by one: memory stays bounded and comes back`, async (t) => {
  const dataDir = tempDir("weft-churn-");
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const r = await runConfigChurn({ n: N, dataDir, sidecarHeapMb: 64, log: (m) => t.diagnostic(m) });
  const grew = (s: { start: HeapSample }, at: HeapSample) => held(at) - held(s.start);

  // Mid-churn, the control plane holds at most about one snapshot per proxy, not a backlog.
  assert.ok(grew(r.cp, r.cp.mid) < 24 * 2 ** 20, `control plane grew ${mb(grew(r.cp, r.cp.mid))} mid-churn`);
  // The sidecar keeps up: once the deletes stop, it runs the final config almost at once.
  assert.ok(r.catchUpMs < 5000, `the sidecar caught up ${r.catchUpMs} ms after the last delete`);
  // What a sidecar keeps per service it can reach (its compiled table, metric handles) is small.
  const perService = grew(r.sidecar, r.sidecar.loaded) / N;
  assert.ok(perService < 12 * 1024, `the sidecar holds ${(perService / 1024).toFixed(1)} KB per service`);
  // With the config back to where it started, so is memory (after GC).
  for (const [what, s] of [
    ["control plane", r.cp],
    ["sidecar", r.sidecar],
  ] as const)
    assert.ok(grew(s, s.end) < 8 * 2 ** 20, `${what} kept ${mb(grew(s, s.end))} after the churn`);
  assert.equal(r.configBytes.end, r.configBytes.start);
});
