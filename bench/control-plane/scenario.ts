// One run of the simulator at N proxies against a control plane that is already up and empty:
//   1. the mesh's Services are applied with `weft apply -f` and a join token is minted per service
//      (POST /api/v1/tokens, as `weft proxy` does with the local admin config);
//   2. connect: all N proxies start at once; the step ends when every one has its certificate and has
//      ACKed its first snapshot (or after --timeout-s, saying how far they got);
//   3. settle: until no proxy has been pushed anything for SETTLE_MS (bounded by MAX_SETTLE_MS), so the
//      changes below are not measured inside the registration storm; RSS is read there ("settled");
//   4. an HTTPRoute change on service 0, then a Workload joining service 0, each applied through the
//      config API (POST /api/v1/apply, the request `weft apply` makes). A change's latency for one
//      proxy is from just before the apply request is sent to that proxy's ACK of the first snapshot
//      showing the change (its publish: the ACK is written in the same tick). The proxies it affects
//      are those whose running snapshot has service 0 when the apply is sent;
//   5. shrink: the upper half of the Services goes — their proxies say bye (their Workloads go at
//      once) and the Services are deleted through the config API. The control plane's RSS (from
//      /proc) and V8 heap in use (from its GET /metrics) are read before and after, each time once
//      no proxy has been pushed anything for the settle period and a further IDLE_MS has passed (time
//      for V8's idle collection: nothing forces a GC), with the entries its caches hold.
// The control plane's CPU time and memory come from /proc (its whole process tree).

import { readFileSync } from "node:fs";
import { cacheEntries, scrapeControlPlane, type AdminTarget } from "./cp-metrics.ts";
import { callApi } from "../../src/client/api-client.ts";
import type { CliConfig } from "../../src/client/cli-config.ts";
import { cpuMicros, memoryKb, processTree, sleep } from "../lib/proc.ts";
import type { WeftMesh } from "../lib/weft.ts";
import { mergeStats, type ChangeCheck, type FleetHandle, type FleetStats } from "./fleet.ts";
import {
  callsOf,
  JOIN_PORT_BASE,
  NAMESPACE,
  routeYaml,
  serviceCount,
  serviceName,
  serviceOf,
  servicesYaml,
  workloadYaml,
  type Scoping,
} from "./mesh-shape.ts";
import { nowMs, type SimProxySpec } from "./sim-proxy.ts";

export const SETTLE_MS = 2000;
/** A control plane that never stops pushing is measured anyway, after this long. */
export const MAX_SETTLE_MS = 30_000;
/** Quiet time after settling before a memory reading of the shrink step. */
export const IDLE_MS = 5000;
/** Longest wait for V8's own major collection after the shrink (the "live" heap reading). */
export const MAX_GC_WAIT_MS = 60_000;

export interface ScenarioOptions {
  mesh: WeftMesh;
  proxies: number;
  scoping: Scoping;
  /** Bound on each step (connect, settle, each change). */
  timeoutS: number;
  /** Where the proxies run; the specs are dealt out among them. */
  fleets: FleetHandle[];
  log: (msg: string) => void;
  /** How long no push must be seen before the mesh counts as settled (default SETTLE_MS). */
  settleMs?: number;
  /** Quiet time before each memory reading of the shrink step (default IDLE_MS). */
  idleMs?: number;
}

export interface ChangeResult {
  affected: number;
  reached: number;
  /** How long the apply request took to return (undefined: it failed, see `error`). */
  applyMs?: number;
  /** Latencies (ms) from just before the apply to each affected proxy's ACK. */
  p50?: number;
  p99?: number;
  max?: number;
  /** Every affected proxy ACKed within the timeout. */
  finished: boolean;
  /** Bytes of config the proxies received from the apply until the last affected one ACKed. */
  bytes: number;
  error?: string;
}

/** The control plane's memory at one point of the shrink step. */
export interface MemoryReading {
  rssMb: number;
  heapUsedMb: number;
  /** V8 heap in use after its last major collection, V8 heap allocated, memory outside it (buffers). */
  heapLiveMb: number;
  heapTotalMb: number;
  externalMb: number;
  /** Major collections V8 had run by then (nodejs_gc_major_total). */
  majorGcs: number;
  /** Entries of its caches and indexes (weft_cp_cache_entries, summed). */
  cacheEntries: number;
  connected: number;
  services: number;
}

export interface ShrinkResult {
  servicesRemoved: number;
  proxiesRemoved: number;
  /** From the first bye to the control plane reporting the smaller mesh with no push for the settle period. */
  ms: number;
  finished: boolean;
  before?: MemoryReading;
  after?: MemoryReading;
  error?: string;
}

export interface ScenarioResult {
  proxies: number;
  services: number;
  scoping: Scoping;
  timeoutS: number;
  connect: {
    finished: boolean;
    ms: number;
    certs: number;
    acked: number;
    /** Ready for its app: on demand, its called destinations in its config; else its first ACK. */
    ready: number;
    failed: number;
    firstFailure?: string;
    /** On demand: the first call to each destination, waiting for its config (ms during the storm). */
    discovery?: { calls: number; p50: number; p99: number; max: number; missed: number };
  };
  settle: { finished: boolean; ms: number };
  cp: { cpuS: number; cpuConnectS: number; rssPeakMb: number; rssSettledMb: number; rssEndMb: number };
  snapshotBytes: { p50: number; max: number; proxies: number };
  route: ChangeResult;
  join: ChangeResult;
  shrink: ShrinkResult;
  errors: Record<string, number>;
  disconnects: number;
  /** Proxy starts that failed before the certificate and were retried (see sim-proxy.ts). */
  startRetries: number;
  lastStartError?: string;
  /** The simulated proxies' processes: memory at the end, CPU seconds over the run (as cp.cpuS). */
  simulator: { rssMb: number; heapUsedMb: number; cpuS: number };
}

const mb = (kb: number) => Math.round(kb / 1024);

export function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function allStats(fleets: FleetHandle[], withSizes = false): Promise<FleetStats> {
  return mergeStats(await Promise.all(fleets.map((f) => f.stats(withSizes))));
}

/** Polls `done` every 200 ms until it says true or `timeoutMs` passed; true if it finished. */
async function until(done: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (performance.now() >= end) return false;
    await sleep(200);
  }
}

export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const timeoutMs = o.timeoutS * 1000;
  const services = serviceCount(o.proxies);
  const cfg = JSON.parse(readFileSync(o.mesh.configFile, "utf8")) as CliConfig;
  const admin = { server: cfg.server, ca: cfg.ca, token: cfg.token };
  const pids = processTree(o.mesh.controlPlane.pid);

  // 1. The mesh and the join tokens.
  o.log(`N=${o.proxies} (${o.scoping}): applying ${services} services`);
  await o.mesh.apply(`services-${o.proxies}`, servicesYaml(services), timeoutMs);
  const tokens: string[] = [];
  for (let i = 0; i < services; i += 16) {
    const batch = Array.from({ length: Math.min(16, services - i) }, (_, k) =>
      callApi<{ token: string }>(admin, "POST", "/api/v1/tokens", {
        service: serviceName(i + k),
        namespace: NAMESPACE,
      }),
    );
    for (const r of await Promise.all(batch)) tokens.push(r.token);
  }
  const specs: SimProxySpec[] = Array.from({ length: o.proxies }, (_, index) => ({
    index,
    service: serviceOf(index, services),
    token: tokens[Math.floor(index / 2) % services],
    reach: o.scoping === "reach" ? callsOf(index, services) : undefined,
    onDemand: o.scoping === "on-demand" ? callsOf(index, services) : undefined,
  }));

  // 2. Connect.
  let rssPeak = 0;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, memoryKb(pids).rss)), 250);
  const cpu0 = cpuMicros(pids);
  const t0 = nowMs();
  const simCpu0 = (await allStats(o.fleets)).cpuS;
  const per = Math.ceil(o.proxies / o.fleets.length);
  await Promise.all(
    o.fleets.map((f, i) =>
      f.start({ server: cfg.server, stream: cfg.stream, ca: cfg.ca }, specs.slice(i * per, (i + 1) * per)),
    ),
  );
  let s = await allStats(o.fleets);
  let lastLog = 0;
  const connected = await until(async () => {
    s = await allStats(o.fleets);
    if (performance.now() - lastLog > 5000) {
      lastLog = performance.now();
      o.log(
        `  connecting: ${s.certs} certificates, ${s.acked}/${o.proxies} ACKed, ${s.ready} ready, ${s.failed} failed, ${s.startRetries} restarts`,
      );
    }
    // Connected = ready for its app: on demand, its called destinations are in too.
    return s.ready + s.failed >= o.proxies;
  }, timeoutMs);
  const waits = ((await allStats(o.fleets, true)).discoveryMs ?? []).sort((a, b) => a - b);
  const connect = {
    finished: connected && s.failed === 0,
    ms: Math.round((connected ? s.lastReadyAt : nowMs()) - t0),
    certs: s.certs,
    acked: s.acked,
    ready: s.ready,
    failed: s.failed,
    firstFailure: s.firstFailure,
    discovery:
      waits.length === 0
        ? undefined
        : {
            calls: waits.length,
            p50: Math.round(percentile(waits, 50)!),
            p99: Math.round(percentile(waits, 99)!),
            max: Math.round(waits[waits.length - 1]),
            missed: s.discoveryMissed,
          },
  };
  const cpuConnectS = (cpuMicros(pids) - cpu0) / 1e6;
  o.log(`  connect: ${connect.acked}/${o.proxies} ACKed in ${connect.ms} ms`);
  if (s.slowest) o.log(`  the last proxy to connect: ${s.slowest.trace.join("; ")}`);

  // 3. Settle.
  const s0 = performance.now();
  const settled = await settleOf(o, timeoutMs);
  const settle = { finished: settled, ms: Math.round(performance.now() - s0) };
  const rssSettled = memoryKb(pids).rss;
  const sized = await allStats(o.fleets, true);
  const sizes = (sized.snapshotBytes ?? []).filter((b) => b > 0).sort((a, b) => a - b);

  // 4. The changes, on service 0.
  const target = serviceName(0);
  const change = async (id: string, yaml: string, check: ChangeCheck): Promise<ChangeResult> => {
    await Promise.all(o.fleets.map((f) => f.watch({ id, service: `${target}.${NAMESPACE}`, check })));
    const bytes0 = (await allStats(o.fleets)).bytesReceived;
    const start = nowMs();
    let applyMs: number | undefined;
    let error: string | undefined;
    try {
      await callApi(admin, "POST", "/api/v1/apply", yaml, timeoutMs);
      applyMs = Math.round(nowMs() - start);
    } catch (err) {
      error = `apply failed: ${(err as Error).message}`;
    }
    let stats = await allStats(o.fleets);
    let w = stats.watches[id];
    const finished =
      error === undefined &&
      (await until(async () => {
        stats = await allStats(o.fleets);
        w = stats.watches[id];
        return w.reachedAt.length >= w.affected;
      }, timeoutMs));
    const lat = w.reachedAt.map((at) => at - start).sort((a, b) => a - b);
    const r = (v: number | undefined) => (v === undefined ? undefined : Math.round(v));
    const result = {
      affected: w.affected,
      reached: w.reachedAt.length,
      applyMs,
      p50: r(percentile(lat, 50)),
      p99: r(percentile(lat, 99)),
      max: r(lat.at(-1)),
      finished,
      error,
      bytes: stats.bytesReceived - bytes0,
    };
    o.log(
      `  ${id}: ${result.reached}/${result.affected} ACKed, p50 ${result.p50} ms, p99 ${result.p99} ms, ${result.bytes} bytes pushed`,
    );
    return result;
  };
  const marker = `sim-${o.proxies}-${Date.now().toString(36)}`;
  const route = await change("route", routeYaml(target, marker), { kind: "route", marker });
  const port = JOIN_PORT_BASE;
  const join = await change("join", workloadYaml(target, `${target}-joined`, port), {
    kind: "endpoint",
    port,
  });

  const shrink = await shrinkHalf(o, admin, pids, services, timeoutMs);

  clearInterval(sampler);
  const end = await allStats(o.fleets);
  const mem = memoryKb(pids);
  return {
    proxies: o.proxies,
    services,
    scoping: o.scoping,
    timeoutS: o.timeoutS,
    connect,
    settle,
    cp: {
      cpuS: Math.round((cpuMicros(pids) - cpu0) / 1e4) / 100,
      cpuConnectS: Math.round(cpuConnectS * 100) / 100,
      rssPeakMb: mb(Math.max(rssPeak, mem.hwm)),
      rssSettledMb: mb(rssSettled),
      rssEndMb: mb(mem.rss),
    },
    snapshotBytes: { p50: percentile(sizes, 50) ?? 0, max: sizes.at(-1) ?? 0, proxies: sizes.length },
    route,
    join,
    shrink,
    errors: end.errors,
    disconnects: end.disconnects,
    startRetries: end.startRetries,
    lastStartError: end.lastStartError,
    simulator: {
      rssMb: end.rssMb,
      heapUsedMb: end.heapUsedMb,
      cpuS: Math.round((end.cpuS - simCpu0) * 100) / 100,
    },
  };
}

/** Until no proxy was pushed anything for the settle period (bounded); true if it got there. */
function settleOf(o: ScenarioOptions, timeoutMs: number): Promise<boolean> {
  return until(
    async () => nowMs() - (await allStats(o.fleets)).lastPublishAt >= (o.settleMs ?? SETTLE_MS),
    Math.min(timeoutMs, MAX_SETTLE_MS),
  );
}

async function memoryReading(admin: AdminTarget, pids: number[]): Promise<MemoryReading> {
  const m = await scrapeControlPlane(admin);
  return {
    rssMb: mb(memoryKb(pids).rss),
    heapUsedMb: Math.round((m.get("nodejs_heap_size_used_bytes") ?? 0) / 1048576),
    heapLiveMb: Math.round((m.get("nodejs_heap_live_bytes") ?? 0) / 1048576),
    heapTotalMb: Math.round((m.get("nodejs_heap_size_total_bytes") ?? 0) / 1048576),
    externalMb: Math.round((m.get("nodejs_external_memory_bytes") ?? 0) / 1048576),
    majorGcs: m.get("nodejs_gc_major_total") ?? 0,
    cacheEntries: cacheEntries(m),
    connected: m.get("weft_cp_connected_proxies") ?? 0,
    services: m.get('weft_cp_resources{kind="Service"}') ?? 0,
  };
}

/** Step 5: the upper half of the Services and their proxies go; memory before and after. */
async function shrinkHalf(
  o: ScenarioOptions,
  admin: AdminTarget,
  pids: number[],
  services: number,
  timeoutMs: number,
): Promise<ShrinkResult> {
  const keep = Math.ceil(services / 2);
  const removed = Array.from({ length: services - keep }, (_, k) => serviceName(keep + k));
  const result: ShrinkResult = { servicesRemoved: removed.length, proxiesRemoved: 0, ms: 0, finished: false };
  if (removed.length === 0) return result;
  try {
    await settleOf(o, timeoutMs);
    await sleep(o.idleMs ?? IDLE_MS);
    result.before = await memoryReading(admin, pids);
    o.log(`  shrink: removing ${removed.length} services; before: ${JSON.stringify(result.before)}`);
    const t0 = nowMs();
    const left = await Promise.all(o.fleets.map((f) => f.leave(removed)));
    result.proxiesRemoved = left.reduce((a, b) => a + b, 0);
    for (let i = 0; i < removed.length; i += 16)
      await Promise.all(
        removed
          .slice(i, i + 16)
          .map((name) => callApi(admin, "DELETE", `/api/v1/resources/services/${NAMESPACE}/${name}`)),
      );
    const connectedAfter = result.before.connected - result.proxiesRemoved;
    const smaller = await until(async () => {
      const m = await scrapeControlPlane(admin);
      return (
        (m.get("weft_cp_connected_proxies") ?? 0) <= connectedAfter &&
        (m.get('weft_cp_resources{kind="Service"}') ?? 0) <= keep
      );
    }, timeoutMs);
    const settled = smaller && (await settleOf(o, timeoutMs));
    result.ms = Math.round(nowMs() - t0);
    result.finished = settled;
    await sleep(o.idleMs ?? IDLE_MS);
    // The live heap is what a major collection left: wait (bounded) for V8's first one since the
    // shrink, so the reading is not the one from before it.
    const gcs = result.before.majorGcs;
    await until(
      async () => ((await scrapeControlPlane(admin)).get("nodejs_gc_major_total") ?? 0) > gcs,
      o.idleMs === 0 ? 0 : MAX_GC_WAIT_MS,
    );
    result.after = await memoryReading(admin, pids);
    o.log(`  shrink: after ${result.ms} ms: ${JSON.stringify(result.after)}`);
  } catch (err) {
    result.error = (err as Error).message;
    o.log(`  shrink failed: ${result.error}`);
  }
  return result;
}
