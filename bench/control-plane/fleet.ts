// A fleet of simulated proxies in one process (sim-proxy.ts), and what the scenario asks of it: start
// them all at once, say how far they got, and watch for a change. A watch names a service and what
// the change looks like in a snapshot (a route carrying a marker, or an endpoint on a port); the
// proxies it affects are those whose running snapshot has that service at the moment the watch is
// set, and for each the fleet records the first time it ACKed a snapshot showing the change.
//
// The same interface is served across a process boundary by fleet-worker.ts, so a run can spread its
// proxies over a few processes; the scenario only sees FleetHandle.

import type { ProxySnapshot } from "../../src/model/snapshot.ts";
import { nowMs, SimProxy, type ControlPlaneTarget, type SimProxySpec } from "./sim-proxy.ts";

/** What a change looks like in a snapshot. */
export type ChangeCheck =
  /** Some route of the service sets a request header to `marker` (an HTTPRoute applied for it). */
  | { kind: "route"; marker: string }
  /** Some endpoint of the service's clusters is on `port` (a Workload that joined). */
  | { kind: "endpoint"; port: number };

export interface Watch {
  id: string;
  /** Canonical service name, "name.namespace". */
  service: string;
  check: ChangeCheck;
}

export interface WatchProgress {
  /** Proxies that had the service when the watch was set. */
  affected: number;
  /** Epoch ms at which each affected proxy that got there ACKed the change. */
  reachedAt: number[];
}

export interface FleetStats {
  proxies: number;
  failed: number;
  /** The first failure's reason, if any. */
  firstFailure?: string;
  certs: number;
  acked: number;
  /** Starts that failed before the certificate and were retried, and the last such error. */
  startRetries: number;
  lastStartError?: string;
  /** Epoch ms of the latest first ACK and of the latest snapshot published on any proxy. */
  lastFirstAckAt: number;
  /**
   * Proxies ready to serve their app's calls (on demand: every called destination in its config;
   * otherwise its first ACK), and when the last of them got there.
   */
  ready: number;
  lastReadyAt: number;
  /** On demand: each first call's wait for its destination (ms; only when sizes are asked for). */
  discoveryMs?: number[];
  /** On demand: first calls that did not get their destination. */
  discoveryMissed: number;
  lastPublishAt: number;
  disconnects: number;
  /** Bytes of config messages all its proxies received so far. */
  bytesReceived: number;
  errors: Record<string, number>;
  watches: Record<string, WatchProgress>;
  /** Encoded size of each proxy's running snapshot (only when asked: it costs a serialisation each). */
  snapshotBytes?: number[];
  /** The proxy that connected last (or has not yet): when it got there and what happened on the way. */
  slowest?: { firstAckAt: number; trace: string[] };
  heapUsedMb: number;
  rssMb: number;
  /** CPU time (user + system) the fleet's process has used so far, in seconds. */
  cpuS: number;
}

export interface FleetHandle {
  start(cp: ControlPlaneTarget, specs: SimProxySpec[]): Promise<void>;
  watch(w: Watch): Promise<void>;
  stats(withSizes?: boolean): Promise<FleetStats>;
  /** The proxies of these services say bye and stop (their Workloads go at once). */
  leave(services: string[]): Promise<number>;
  stop(): Promise<void>;
}

interface ActiveWatch {
  w: Watch;
  pending: Set<SimProxy>;
  reachedAt: number[];
  affected: number;
}

export function showsChange(s: ProxySnapshot, service: string, check: ChangeCheck): boolean {
  if (check.kind === "route") {
    const routes = s.outbound[service]?.routes ?? [];
    return routes.some((r) => r.filters?.requestHeaders?.set?.some((h) => h.value === check.marker));
  }
  const [name, namespace] = service.split(".");
  return Object.values(s.clusters).some(
    (c) => c.service === name && c.namespace === namespace && c.endpoints.some((e) => e.port === check.port),
  );
}

export class Fleet implements FleetHandle {
  readonly proxies: SimProxy[] = [];
  #watches = new Map<string, ActiveWatch>();
  #lastPublishAt = 0;

  async start(cp: ControlPlaneTarget, specs: SimProxySpec[]): Promise<void> {
    for (const spec of specs) {
      const p = new SimProxy(spec);
      p.snapshot.subscribe((s) => this.#published(p, s));
      this.proxies.push(p);
    }
    // All at once, as N sidecars starting together would; each start settles on its own.
    for (const p of this.proxies) void p.start(cp);
  }

  #published(p: SimProxy, s: ProxySnapshot): void {
    const at = nowMs();
    this.#lastPublishAt = at;
    for (const a of this.#watches.values()) {
      if (!a.pending.has(p) || !showsChange(s, a.w.service, a.w.check)) continue;
      a.pending.delete(p);
      a.reachedAt.push(at);
    }
  }

  async watch(w: Watch): Promise<void> {
    const affected = this.proxies.filter((p) => p.current()?.outbound[w.service] !== undefined);
    this.#watches.set(w.id, { w, pending: new Set(affected), reachedAt: [], affected: affected.length });
  }

  async stats(withSizes = false): Promise<FleetStats> {
    const errors: Record<string, number> = {};
    let certs = 0;
    let acked = 0;
    let failed = 0;
    let disconnects = 0;
    let bytesReceived = 0;
    let startRetries = 0;
    let lastStartError: string | undefined;
    let lastFirstAckAt = 0;
    let ready = 0;
    let lastReadyAt = 0;
    let discoveryMissed = 0;
    let firstFailure: string | undefined;
    for (const p of this.proxies) {
      if (p.certAt !== undefined) certs++;
      if (p.firstAckAt !== undefined) {
        acked++;
        lastFirstAckAt = Math.max(lastFirstAckAt, p.firstAckAt);
      }
      if (p.readyAt !== undefined) {
        ready++;
        lastReadyAt = Math.max(lastReadyAt, p.readyAt);
      }
      discoveryMissed += p.discoveryMissed;
      if (p.failed !== undefined) {
        failed++;
        firstFailure ??= p.failed;
      }
      disconnects += p.disconnects;
      bytesReceived += p.bytesReceived();
      startRetries += p.startRetries;
      if (p.startRetries > 0) lastStartError = p.lastStartError;
      for (const [code, n] of p.errors) errors[code] = (errors[code] ?? 0) + n;
    }
    let slowest: FleetStats["slowest"];
    for (const p of this.proxies) {
      const at = p.firstAckAt ?? Infinity;
      if (!slowest || at > slowest.firstAckAt) slowest = { firstAckAt: at, trace: p.trace };
    }
    const watches: Record<string, WatchProgress> = {};
    for (const [id, a] of this.#watches) watches[id] = { affected: a.affected, reachedAt: [...a.reachedAt] };
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    return {
      proxies: this.proxies.length,
      failed,
      firstFailure,
      certs,
      acked,
      startRetries,
      lastStartError,
      lastFirstAckAt,
      ready,
      lastReadyAt,
      discoveryMs: withSizes ? this.proxies.flatMap((p) => p.discoveryMs) : undefined,
      discoveryMissed,
      lastPublishAt: this.#lastPublishAt,
      disconnects,
      bytesReceived,
      errors,
      watches,
      snapshotBytes: withSizes ? this.proxies.map((p) => p.snapshotBytes()) : undefined,
      slowest,
      heapUsedMb: Math.round(mem.heapUsed / 1048576),
      rssMb: Math.round(mem.rss / 1048576),
      cpuS: (cpu.user + cpu.system) / 1e6,
    };
  }

  async leave(services: string[]): Promise<number> {
    const names = new Set(services);
    const leaving = this.proxies.filter((p) => names.has(p.spec.service));
    await Promise.all(leaving.map((p) => p.leave()));
    return leaving.length;
  }

  async stop(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.stop()));
  }
}

/** The stats of several fleets as one. */
export function mergeStats(all: FleetStats[]): FleetStats {
  const errors: Record<string, number> = {};
  const watches: Record<string, WatchProgress> = {};
  for (const s of all) {
    for (const [code, n] of Object.entries(s.errors)) errors[code] = (errors[code] ?? 0) + n;
    for (const [id, w] of Object.entries(s.watches)) {
      const m = (watches[id] ??= { affected: 0, reachedAt: [] });
      m.affected += w.affected;
      m.reachedAt.push(...w.reachedAt);
    }
  }
  const sum = (f: (s: FleetStats) => number) => all.reduce((n, s) => n + f(s), 0);
  const max = (f: (s: FleetStats) => number) => all.reduce((n, s) => Math.max(n, f(s)), 0);
  const sizes = all.some((s) => s.snapshotBytes) ? all.flatMap((s) => s.snapshotBytes ?? []) : undefined;
  return {
    proxies: sum((s) => s.proxies),
    failed: sum((s) => s.failed),
    firstFailure: all.find((s) => s.firstFailure)?.firstFailure,
    certs: sum((s) => s.certs),
    acked: sum((s) => s.acked),
    startRetries: sum((s) => s.startRetries),
    lastStartError: all.find((s) => s.lastStartError)?.lastStartError,
    lastFirstAckAt: max((s) => s.lastFirstAckAt),
    ready: sum((s) => s.ready),
    lastReadyAt: max((s) => s.lastReadyAt),
    discoveryMs: all.some((s) => s.discoveryMs) ? all.flatMap((s) => s.discoveryMs ?? []) : undefined,
    discoveryMissed: sum((s) => s.discoveryMissed),
    lastPublishAt: max((s) => s.lastPublishAt),
    disconnects: sum((s) => s.disconnects),
    bytesReceived: sum((s) => s.bytesReceived),
    errors,
    watches,
    snapshotBytes: sizes,
    slowest: all.reduce<FleetStats["slowest"]>(
      (m, s) => (s.slowest && (!m || s.slowest.firstAckAt > m.firstAckAt) ? s.slowest : m),
      undefined,
    ),
    heapUsedMb: sum((s) => s.heapUsedMb),
    rssMb: sum((s) => s.rssMb),
    cpuS: sum((s) => s.cpuS),
  };
}
