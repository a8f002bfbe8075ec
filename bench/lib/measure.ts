// Measuring one case, in a fixed order: idle RSS → fixed-rate warm-up → fixed-rate latency run
// (sampling RSS, CPU delta) → closed-loop wrk run (CPU delta, then VmHWM as the peak).
// CPU per request = (utime+stime of the proxy processes after − before) / requests completed.
// HTTP/2 targets use h2load for the closed loop too (-c N -m M), and a case may check afterwards what
// the load generator cannot see (gRPC statuses in trailers).

import { join } from "node:path";
import { runH2Closed } from "./h2load.ts";
import { runFixedRate, runWrk, type RateResult, type Target, type WrkResult } from "./load.ts";
import { coreLoad, coreTimes, cpuMicros, memoryKb, processTree, sleep } from "./proc.ts";

export interface BenchSettings {
  /** Cores: the proxies', and the load generators' + upstream's. */
  proxyCore: number;
  loadCore: number;
  wrkConnections: number;
  wrkSeconds: number;
  /** HTTP/2 cases' closed loop: h2load connections, and streams in flight on each. */
  h2Connections: number;
  h2Streams: number;
  rateRps: number;
  rateSeconds: number;
  warmupSeconds: number;
  workDir: string;
}

/** A case ready to be measured: its target and the proxy processes (none for direct). */
export interface PreparedCase {
  target: Target;
  /** Root pids of the proxy processes; their descendants are included (nginx's worker). */
  rootPids: number[];
  startupMs?: number;
  notes?: string[];
  /**
   * Runs after the load, given the 2xx responses the load generators counted (warm-up included):
   * problems it finds (e.g. fewer gRPC OKs than that, or non-OK statuses counted by a sidecar).
   */
  afterLoad?: (requests: number) => Promise<string[]>;
}

export interface Measurement {
  problems: string[];
  throughput: WrkResult;
  latency: RateResult;
  cpuUsPerRequest?: number;
  cpuUsPerRequestAtRate?: number;
  rssIdleMb?: number;
  rssAtRateMb?: number;
  rssPeakMb?: number;
  /** How busy each core was during the wrk run (0..1), and the fraction stolen by the hypervisor. */
  coresDuringWrk: { proxyBusy: number; loadBusy: number; steal: number };
  /** The same over 1 s before any load: anything well above 0 is other work on the host. */
  coresIdleBefore: { proxyBusy: number; loadBusy: number };
}

const round2 = (v: number) => Math.round(v * 100) / 100;
const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;

export async function measure(id: string, c: PreparedCase, s: BenchSettings): Promise<Measurement> {
  const pids = c.rootPids.flatMap((p) => processTree(p));
  const hasProxy = pids.length > 0;
  // Let startup work settle, and see what else is using the cores while nothing is being measured
  // (other processes on the host make every figure of this case less trustworthy).
  const quiet0 = coreTimes();
  await sleep(1000);
  const quiet = coreLoad(quiet0, coreTimes());
  const idle = hasProxy ? memoryKb(pids).rss : undefined;

  const logFile = join(s.workDir, `${id}.h2load.log`);
  const warmup = await runFixedRate(c.target, s.rateRps, s.warmupSeconds, s.loadCore, logFile);

  let rateMax = 0;
  const sampler = setInterval(() => {
    rateMax = Math.max(rateMax, memoryKb(pids).rss);
  }, 100);
  const cpu0 = cpuMicros(pids);
  let latency: RateResult;
  try {
    latency = await runFixedRate(c.target, s.rateRps, s.rateSeconds, s.loadCore, logFile);
  } finally {
    clearInterval(sampler);
  }
  const cpu1 = cpuMicros(pids);

  const cores0 = coreTimes();
  const throughput = c.target.h2
    ? await runH2Closed(c.target, s.h2Connections, s.h2Streams, s.wrkSeconds, s.loadCore)
    : await runWrk(c.target, s.wrkConnections, s.wrkSeconds, s.loadCore);
  const cpu2 = cpuMicros(pids);
  const load = coreLoad(cores0, coreTimes());
  const peak = hasProxy ? memoryKb(pids).hwm : undefined;

  // Errors don't abort the run, but they mark the case's figures as invalid in the report.
  const problems: string[] = [];
  const closed = c.target.h2 ? "h2load" : "wrk";
  if (throughput.non2xx) problems.push(`${throughput.non2xx} non-2xx responses under ${closed}`);
  if (throughput.socketErrors)
    problems.push(
      `${throughput.socketErrors} ${c.target.h2 ? "failed requests" : "socket errors"} under ${closed}`,
    );
  if (latency.failed) problems.push(`${latency.failed} failed requests at ${s.rateRps} req/s`);
  if (latency.achievedRps < s.rateRps * 0.95)
    problems.push(`fixed rate reached only ${latency.achievedRps} req/s`);
  if (c.afterLoad)
    problems.push(...(await c.afterLoad(warmup.samples + latency.samples + throughput.requests)));
  return {
    problems,
    throughput,
    latency,
    cpuUsPerRequest: hasProxy ? (cpu2 - cpu1) / throughput.requests : undefined,
    cpuUsPerRequestAtRate: hasProxy ? (cpu1 - cpu0) / Math.max(1, latency.samples) : undefined,
    rssIdleMb: idle === undefined ? undefined : mb(idle),
    rssAtRateMb: hasProxy ? mb(rateMax) : undefined,
    rssPeakMb: peak === undefined ? undefined : mb(peak),
    coresIdleBefore: { proxyBusy: round2(quiet[s.proxyCore].busy), loadBusy: round2(quiet[s.loadCore].busy) },
    coresDuringWrk: {
      proxyBusy: round2(load[s.proxyCore].busy),
      loadBusy: round2(load[s.loadCore].busy),
      steal: round2(load[s.proxyCore].steal + load[s.loadCore].steal),
    },
  };
}
