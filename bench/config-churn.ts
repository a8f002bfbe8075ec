// Config churn, measured: apply N Services, delete them one by one, and report the control plane's and
// one sidecar's memory (heap after GC, and RSS) before, at the peak and after. Issue 6, hole 5.
//
//   node bench/config-churn.ts --n 2000 [--sidecar-heap-mb 64]

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { mb, runConfigChurn, type HeapSample, type Stages } from "../test/helpers/config-churn.ts";

const { values } = parseArgs({
  options: { n: { type: "string", default: "2000" }, "sidecar-heap-mb": { type: "string" } },
});
const dataDir = mkdtempSync(join(tmpdir(), "weft-churn-"));
try {
  const r = await runConfigChurn({
    n: Number(values.n),
    dataDir,
    sidecarHeapMb: values["sidecar-heap-mb"] ? Number(values["sidecar-heap-mb"]) : undefined,
    log: (m) => process.stderr.write(`config-churn: ${m}\n`),
  });
  const cell = (h: HeapSample) => `${mb(h.heapUsed + h.external)} / ${mb(h.rss)}`;
  const row = (what: string, s: Stages) =>
    `| ${what} | ${cell(s.start)} | ${cell(s.loaded)} | ${cell(s.mid)} | ${cell(s.end)} |`;
  console.log(
    `config churn, N = ${r.n}: apply ${r.applyMs} ms; delete one by one ${r.deleteMs} ms; ` +
      `the sidecar caught up ${r.catchUpMs} ms after the last delete\n`,
  );
  console.log("heap used + external (after GC) / RSS:\n");
  console.log("| process | start | N applied | half deleted | all deleted |\n|---|---|---|---|---|");
  console.log(row("control plane", r.cp));
  console.log(row("sidecar", r.sidecar));
  console.log(
    `\nsidecar /config: ${r.configBytes.start} → ${r.configBytes.loaded} → ${r.configBytes.end} bytes`,
  );
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(0);
