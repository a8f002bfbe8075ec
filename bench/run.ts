// `npm run bench`: the same 100-byte HTTP/1.1 keep-alive upstream reached directly, through one weft
// outbound hop, through a weft sidecar pair with mTLS, through nginx and through a plain Node proxy —
// measured one after the other in one run and reported as ratios against direct; then HTTP/2 (h2c) and
// gRPC unary upstreams reached directly and through the weft pair, loaded with h2load (lib/h2-cases.ts).
// Writes bench/results/latest.json and latest.md, and prints the markdown. See docs/benchmarks.md.
//
// Flags: --quick (5 s runs), --only direct,nginx,... , --wrk-seconds N, --rate-seconds N, --keep,
// --cpu-prof DIR (each sidecar writes a V8 CPU profile into DIR when its case ends)

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CASES as H1_CASES, type CaseContext } from "./lib/cases.ts";
import { H2_CASES, startGrpcApp, startH2App, type GrpcApp } from "./lib/h2-cases.ts";
import { nodeBaselineRss } from "./lib/baseline.ts";
import { measure, type BenchSettings } from "./lib/measure.ts";
import { setStopGrace, spawnPinned, stopAll } from "./lib/proc.ts";
import { markdown, type CaseResult, type Report } from "./lib/report.ts";
import { ensureTools, environment, pinSelf } from "./lib/tools.ts";
import { buildDist, weftAvailable, WeftMesh } from "./lib/weft.ts";

// Ten cases at the default 10 s per load phase take about 4½ minutes (26 s each, plus the dist build).
const RUN_LIMIT_MS = 420_000;
const CASES = [...H1_CASES, ...H2_CASES];
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean" },
      only: { type: "string" },
      "wrk-seconds": { type: "string" },
      "rate-seconds": { type: "string" },
      keep: { type: "boolean" },
      "cpu-prof": { type: "string" },
    },
  });
  const [major] = process.versions.node.split(".").map(Number);
  if (major < 22)
    throw new Error(`needs Node >= 22.18 (this is ${process.version}); run it with \`npm run bench\``);
  const startedAt = new Date();
  const t0 = performance.now();
  const quick = values.quick ?? false;
  const workDir = mkdtempSync(join(tmpdir(), "weft-bench-"));
  const settings: BenchSettings = {
    proxyCore: 0,
    loadCore: 1,
    wrkConnections: 50,
    h2Connections: 5,
    h2Streams: 10,
    wrkSeconds: Number(values["wrk-seconds"] ?? (quick ? 5 : 10)),
    rateRps: 1000,
    rateSeconds: Number(values["rate-seconds"] ?? (quick ? 5 : 10)),
    warmupSeconds: 2,
    workDir,
  };
  const only = values.only?.split(",");
  const cases = CASES.filter((c) => !only || only.includes(c.id));
  if (only && cases.length !== only.length)
    throw new Error(`--only takes ${CASES.map((c) => c.id).join(",")}`);
  if (only && !only.includes("direct")) log("without the direct case there are no ratios");

  ensureTools(log);
  pinSelf(settings.loadCore);

  const upstream = spawnPinned("upstream", settings.loadCore, process.execPath, [
    join(import.meta.dirname, "upstream.ts"),
  ]);
  const upstreamPort = Number((await upstream.waitFor(/upstream listening 127\.0\.0\.1:(\d+)/, 10_000))[1]);
  log(`upstream on 127.0.0.1:${upstreamPort} (core ${settings.loadCore})`);

  const nodeBaseline = await nodeBaselineRss(workDir, settings.proxyCore);
  const usesWeft = cases.some((c) => c.id.startsWith("weft"));
  // Measure what users run: the compiled dist/, not the sources under type stripping (which bin/weft.js
  // falls back to whenever a source file is newer than the build — ~30 MB more RSS, slower start).
  if (usesWeft) buildDist(log);
  const weftProblem = usesWeft ? await weftAvailable() : undefined;
  if (weftProblem) log(`weft cases will be skipped: ${weftProblem}`);
  let mesh: Promise<WeftMesh> | undefined;
  let h2App: ReturnType<typeof startH2App> | undefined;
  let grpcApp: Promise<GrpcApp> | undefined;
  const ctx: CaseContext = {
    settings,
    upstreamPort,
    mesh() {
      mesh ??= (async () => {
        // The control plane is not a proxy: it goes with the load generators, off the proxies' core.
        const m = await WeftMesh.start(workDir, settings.loadCore);
        if (values["cpu-prof"]) {
          m.cpuProfDir = resolve(values["cpu-prof"]);
          setStopGrace(15_000);
        }
        await m.applyStaticWorkload("upstream-direct-1", "bench-direct", upstreamPort);
        return m;
      })();
      return mesh;
    },
    h2App: () => (h2App ??= startH2App(settings.loadCore)),
    grpcApp: () => (grpcApp ??= startGrpcApp(settings.loadCore)),
  };

  const results: CaseResult[] = [];
  for (const c of cases) {
    const result: CaseResult = { id: c.id, label: c.label, group: c.group, baseline: c.baseline };
    results.push(result);
    if (weftProblem && c.id.startsWith("weft")) {
      result.skipped = `weft not runnable (${weftProblem})`;
      continue;
    }
    log(`${c.label}: starting`);
    let running;
    try {
      running = await c.prepare(ctx);
      result.startupMs = running.startupMs;
      result.notes = running.notes;
      result.m = await measure(c.id, running, settings);
      const m = result.m;
      log(
        `${c.label}: ${Math.round(m.throughput.rps)} req/s, p50/p99 ${m.latency.p50Us}/${m.latency.p99Us} µs` +
          (m.cpuUsPerRequest === undefined
            ? ""
            : `, ${m.cpuUsPerRequest.toFixed(1)} µs CPU/req, peak ${m.rssPeakMb} MB`) +
          (m.problems.length ? ` — INVALID: ${m.problems.join("; ")}` : ""),
      );
    } catch (err) {
      result.skipped = (err as Error).message.split("\n")[0];
      log(`${c.label}: failed: ${(err as Error).message}`);
    } finally {
      await running?.stop();
    }
  }
  if (mesh) await (await mesh.catch(() => undefined))?.stop();
  await upstream.stop();
  for (const app of [h2App, grpcApp]) await (await app?.catch(() => undefined))?.child.stop();

  const report: Report = {
    startedAt: startedAt.toISOString(),
    elapsedSeconds: (performance.now() - t0) / 1000,
    settings: {
      proxyCore: settings.proxyCore,
      loadCore: settings.loadCore,
      wrkConnections: settings.wrkConnections,
      h2Connections: settings.h2Connections,
      h2Streams: settings.h2Streams,
      wrkSeconds: settings.wrkSeconds,
      rateRps: settings.rateRps,
      rateSeconds: settings.rateSeconds,
      warmupSeconds: settings.warmupSeconds,
    },
    environment: environment(),
    nodeBaseline,
    cases: results,
  };
  const md = markdown(report);
  const outDir = join(import.meta.dirname, "results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "latest.json"), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(join(outDir, "latest.md"), md);
  process.stdout.write(md);
  log(`wrote bench/results/latest.json and latest.md in ${report.elapsedSeconds.toFixed(0)} s`);
  if (values.keep) log(`work dir kept: ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
  return results.some((r) => !r.m || r.m?.problems.length) ? 1 : 0;
}

const watchdog = setTimeout(() => {
  log(`over the ${RUN_LIMIT_MS / 1000} s limit: stopping`);
  void stopAll().then(() => process.exit(2));
}, RUN_LIMIT_MS);
watchdog.unref();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping`);
    void stopAll().then(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await stopAll();
    process.exit(code);
  },
  async (err: Error) => {
    log(`error: ${err.message}`);
    await stopAll();
    process.exit(1);
  },
);
