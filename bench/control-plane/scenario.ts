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
//      are those whose running snapshot has service 0 when the apply is sent.
// The control plane's CPU time and memory come from /proc (its whole process tree).

import { readFileSync } from "node:fs";
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
    failed: number;
    firstFailure?: string;
  };
  settle: { finished: boolean; ms: number };
  cp: { cpuS: number; cpuConnectS: number; rssPeakMb: number; rssSettledMb: number; rssEndMb: number };
  snapshotBytes: { p50: number; max: number; proxies: number };
  route: ChangeResult;
  join: ChangeResult;
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
        `  connecting: ${s.certs} certificates, ${s.acked}/${o.proxies} ACKed, ${s.failed} failed, ${s.startRetries} restarts`,
      );
    }
    return s.acked + s.failed >= o.proxies;
  }, timeoutMs);
  const connect = {
    finished: connected && s.failed === 0,
    ms: Math.round((connected ? s.lastFirstAckAt : nowMs()) - t0),
    certs: s.certs,
    acked: s.acked,
    failed: s.failed,
    firstFailure: s.firstFailure,
  };
  const cpuConnectS = (cpuMicros(pids) - cpu0) / 1e6;
  o.log(`  connect: ${connect.acked}/${o.proxies} ACKed in ${connect.ms} ms`);
  if (s.slowest) o.log(`  the last proxy to connect: ${s.slowest.trace.join("; ")}`);

  // 3. Settle.
  const s0 = performance.now();
  const settled = await until(
    async () => nowMs() - (await allStats(o.fleets)).lastPublishAt >= (o.settleMs ?? SETTLE_MS),
    Math.min(timeoutMs, MAX_SETTLE_MS),
  );
  const settle = { finished: settled, ms: Math.round(performance.now() - s0) };
  const rssSettled = memoryKb(pids).rss;
  const sized = await allStats(o.fleets, true);
  const sizes = (sized.snapshotBytes ?? []).filter((b) => b > 0).sort((a, b) => a - b);

  // 4. The changes, on service 0.
  const target = serviceName(0);
  const change = async (id: string, yaml: string, check: ChangeCheck): Promise<ChangeResult> => {
    await Promise.all(o.fleets.map((f) => f.watch({ id, service: `${target}.${NAMESPACE}`, check })));
    const start = nowMs();
    let applyMs: number | undefined;
    let error: string | undefined;
    try {
      await callApi(admin, "POST", "/api/v1/apply", yaml, timeoutMs);
      applyMs = Math.round(nowMs() - start);
    } catch (err) {
      error = `apply failed: ${(err as Error).message}`;
    }
    let w = (await allStats(o.fleets)).watches[id];
    const finished =
      error === undefined &&
      (await until(async () => {
        w = (await allStats(o.fleets)).watches[id];
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
    };
    o.log(`  ${id}: ${result.reached}/${result.affected} ACKed, p50 ${result.p50} ms, p99 ${result.p99} ms`);
    return result;
  };
  const marker = `sim-${o.proxies}-${Date.now().toString(36)}`;
  const route = await change("route", routeYaml(target, marker), { kind: "route", marker });
  const port = JOIN_PORT_BASE;
  const join = await change("join", workloadYaml(target, `${target}-joined`, port), {
    kind: "endpoint",
    port,
  });

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
