// The control-plane scale simulator (issue 8): for each N, a real `weft control-plane` pinned to one
// core, and N simulated proxies (real CSRs, hello, snapshots, ACKs through the proxy's own client
// code; no data plane) in a few worker processes pinned to the other; see scenario.ts for the steps
// and what each number means. Results go to bench/results/control-plane-latest.{md,json}.
//
//   npm run bench:control-plane -- [--proxies 100,500,1000,2000] [--scoping on-demand|full|reach,...]
//                                  [--timeout-s 120] [--per-worker 500] [--keep-going]
//                                  [--cpu-prof DIR] [--heap-snapshot DIR]
//
// --cpu-prof writes the control plane's V8 CPU profile into DIR when it stops; --heap-snapshot makes
// it write a heap snapshot into DIR each time it gets SIGUSR2 (`kill -USR2 <pid>` during a run).
//
// A step that does not finish within --timeout-s is reported with how far it got, and the larger Ns
// of that scoping are skipped (they would only fall over later), unless --keep-going.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { setStopGrace, stopAll } from "../lib/proc.ts";
import { WeftMesh } from "../lib/weft.ts";
import { WorkerFleet } from "./fleet-worker.ts";
import type { Scoping } from "./mesh-shape.ts";
import { markdownTable, SHRINK_NOTES, shrinkTable, TABLE_NOTES } from "./report.ts";
import { runScenario, type ScenarioResult } from "./scenario.ts";

const ROOT = resolve(import.meta.dirname, "..", "..");
const log = (m: string) => process.stderr.write(`bench:control-plane: ${m}\n`);

function fail(msg: string): never {
  process.stderr.write(`bench:control-plane: ${msg}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    proxies: { type: "string", default: "100,500,1000,2000" },
    scoping: { type: "string", default: "on-demand" },
    "timeout-s": { type: "string", default: "120" },
    "per-worker": { type: "string", default: "500" },
    "worker-heap-mb": { type: "string", default: "2048" },
    "keep-going": { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
    "heap-snapshot": { type: "string" },
    out: { type: "string", default: join(ROOT, "bench", "results") },
  },
});

const counts = values.proxies.split(",").map((v) => Number(v.trim()));
if (counts.some((n) => !Number.isInteger(n) || n < 2 || n > 20_000))
  fail(`--proxies takes whole numbers from 2 to 20000, comma-separated; got "${values.proxies}"`);
const scopings = values.scoping.split(",").map((v) => v.trim());
for (const s of scopings)
  if (s !== "on-demand" && s !== "full" && s !== "reach")
    fail(`--scoping takes on-demand, full and reach, comma-separated; got "${values.scoping}"`);
const timeoutS = Number(values["timeout-s"]);
if (!(timeoutS >= 5 && timeoutS <= 3600))
  fail(`--timeout-s must be 5 to 3600 seconds; got "${values["timeout-s"]}"`);
const perWorker = Number(values["per-worker"]);
if (!Number.isInteger(perWorker) || perWorker < 1) fail(`--per-worker must be a positive whole number`);
const heapMb = Number(values["worker-heap-mb"]);
if (!Number.isInteger(heapMb) || heapMb < 128) fail(`--worker-heap-mb must be a whole number ≥ 128`);
if (cpus().length < 2) log("only one core: the control plane and the simulator share it");
const [CP_CORE, SIM_CORE] = cpus().length >= 2 ? [0, 1] : [0, 0];

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => {
    interrupted = true;
    log(`${sig}: stopping`);
    void stopAll().finally(() => process.exit(130));
  });

const cpNodeArgs = [
  ...(values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${resolve(values["cpu-prof"])}`] : []),
  ...(values["heap-snapshot"]
    ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${resolve(values["heap-snapshot"])}`]
    : []),
];
if (values["cpu-prof"]) setStopGrace(60_000);

const started = new Date();
const load = loadavg()[0].toFixed(1);
const results: ScenarioResult[] = [];
const skipped: string[] = [];

function write(): void {
  mkdirSync(values.out, { recursive: true });
  const header =
    `Control-plane scale, ${started.toISOString().slice(0, 16).replace("T", " ")} UTC ` +
    `(load average ${load} at the start; control plane on core ${CP_CORE}, simulator on core ${SIM_CORE}; ` +
    `steps bounded by ${timeoutS} s)`;
  const md = [
    header,
    "",
    markdownTable(results),
    "",
    ...(skipped.length ? [`Skipped: ${skipped.join("; ")}.`, ""] : []),
    TABLE_NOTES,
    "",
    "When the mesh shrinks to half:",
    "",
    shrinkTable(results),
    "",
    SHRINK_NOTES,
    "",
  ].join("\n");
  writeFileSync(join(values.out, "control-plane-latest.md"), md);
  writeFileSync(
    join(values.out, "control-plane-latest.json"),
    JSON.stringify(
      { started: started.toISOString(), loadAverage: Number(load), timeoutS, results, skipped },
      null,
      2,
    ) + "\n",
  );
}

for (const scoping of scopings as Scoping[]) {
  let fellOver: number | undefined;
  for (const n of counts) {
    if (interrupted) break;
    if (fellOver !== undefined && !values["keep-going"]) {
      skipped.push(`N=${n} ${scoping} (N=${fellOver} did not connect within ${timeoutS} s)`);
      continue;
    }
    const workDir = mkdtempSync(join(tmpdir(), "weft-cpsim-"));
    const fleets = Array.from({ length: Math.ceil(n / perWorker) }, () => new WorkerFleet(SIM_CORE, heapMb));
    let mesh: WeftMesh | undefined;
    try {
      mesh = await WeftMesh.start(workDir, CP_CORE, cpNodeArgs);
      const r = await runScenario({ mesh, proxies: n, scoping, timeoutS, fleets, log });
      results.push(r);
      if (!r.connect.finished) fellOver = n;
      write();
    } catch (err) {
      log(`N=${n} ${scoping}: ${(err as Error).message}`);
      skipped.push(`N=${n} ${scoping} (the run failed: ${(err as Error).message.split("\n")[0]})`);
      fellOver = n;
    } finally {
      await Promise.all(fleets.map((f) => f.stop()));
      await mesh?.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
  }
}
write();
console.log(`\n${markdownTable(results)}\n\n${shrinkTable(results)}\n`);
if (skipped.length) console.log(`Skipped: ${skipped.join("; ")}.\n`);
console.log(`Written to ${join(values.out, "control-plane-latest.md")} and .json`);
process.exit(0);
