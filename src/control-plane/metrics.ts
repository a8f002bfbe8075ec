// The control plane's own metrics, served as Prometheus text at GET /metrics on the config API
// (admin credential required, api/server.ts). What it measures is read from the parts that already
// count it — the stream server's sessions and admission, the snapshot cache, the compiled pieces, the
// signing queue, the loop-lag monitor, the process — when a scrape comes, so nothing on the hot path
// pays for it beyond the counters those parts keep anyway. Label values come from fixed sets (queue,
// reason, kind, piece, cache), never from a proxy, a Service or a resource name: the number of series
// does not grow with the mesh (docs/control-plane.md lists them).

import { constants, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { renderPrometheus } from "../proxy/metrics/exposition.ts";
import { MetricsRegistry, type CounterSeries, type MetricFamily } from "../proxy/metrics/families.ts";
import type { AdmissionStats } from "./api/admission.ts";
import type { MeshStateCache } from "./mesh-state.ts";
import type { SnapshotCache } from "./stream/snapshot-cache.ts";

export { PROMETHEUS_CONTENT_TYPE } from "../proxy/metrics/exposition.ts";

/** Snapshot pushes written to proxies' streams, counted by the pushers (stream/snapshot-pusher.ts). */
export interface PushStats {
  /** Whole snapshots written. */
  snapshots: number;
  /** Deltas written (what changed since what the proxy holds). */
  deltas: number;
  /** Bytes of those messages (UTF-8). */
  bytes: number;
}

export function newPushStats(): PushStats {
  return { snapshots: 0, deltas: 0, bytes: 0 };
}

/** Where each series is read from at scrape time. */
export interface ControlPlaneMetricsSources {
  state: MeshStateCache;
  snapshots: SnapshotCache;
  /** Config streams open now. */
  connectedProxies: () => number;
  pushes: PushStats;
  admission: { stream: () => AdmissionStats; signing: () => AdmissionStats };
  /** Certificates signed since start. */
  certificatesSigned: () => number;
  /** Total time the control plane's event loop was stalled (loop-lag.ts), ms. */
  stalledMs: () => number;
}

type Family = MetricFamily<CounterSeries>;

export class ControlPlaneMetrics {
  readonly #src: ControlPlaneMetricsSources;
  readonly #registry = new MetricsRegistry();
  readonly #delay: ReturnType<typeof monitorEventLoopDelay>;
  readonly #f: Record<string, Family>;
  readonly #gc: PerformanceObserver;
  /** V8 heap in use right after the last major collection: what is live, without the garbage. */
  #liveHeap = 0;
  #majorGcs = 0;

  constructor(src: ControlPlaneMetricsSources) {
    this.#src = src;
    const r = this.#registry;
    this.#f = {
      connected: r.gauge("weft_cp_connected_proxies", "Proxy config streams open now.", []),
      compiled: r.counter(
        "weft_cp_snapshots_compiled_total",
        "Proxy snapshots compiled (one per proxy and change it is concerned by; coalesced changes compile once).",
        [],
      ),
      inconsistent: r.counter(
        "weft_cp_snapshots_inconsistent_total",
        "Compiled snapshots refused by the consistency check (a compiler bug; never sent).",
        [],
      ),
      recomputed: r.counter(
        "weft_cp_pieces_recomputed_total",
        "Shared compiled pieces rebuilt after a change: a Service's cluster, or its route table for one caller scope.",
        ["piece"],
      ),
      pushes: r.counter("weft_cp_pushes_total", "Config messages written to proxies, by type.", ["type"]),
      pushedBytes: r.counter(
        "weft_cp_pushed_bytes_total",
        "Bytes of config messages written to proxies.",
        [],
      ),
      coalesced: r.counter(
        "weft_cp_pushes_coalesced_total",
        "Mesh changes that found a proxy still reading its last push: folded into its next one.",
        [],
      ),
      queued: r.gauge(
        "weft_cp_admission_queued",
        "Requests waiting for their admission turn, by queue (stream = new config streams, signing = CSRs).",
        ["queue"],
      ),
      running: r.gauge("weft_cp_admission_running", "Admitted work in progress, by queue.", ["queue"]),
      admitted: r.counter("weft_cp_admission_admitted_total", "Requests admitted, by queue.", ["queue"]),
      refused: r.counter(
        "weft_cp_admission_refused_total",
        "Requests answered 503 + Retry-After, by queue and reason (queue_full, key_queue_full, queue_timeout).",
        ["queue", "reason"],
      ),
      signed: r.counter("weft_cp_certificates_signed_total", "Workload certificates signed.", []),
      stalled: r.counter(
        "weft_cp_event_loop_stalled_seconds_total",
        "Time the control plane's event loop ran late (beyond 20 ms), summed: its own busy spells.",
        [],
      ),
      delay: r.gauge(
        "weft_cp_event_loop_delay_seconds",
        "Event-loop delay since the previous scrape (quantile 0.5, 0.99, 1 = max).",
        ["quantile"],
      ),
      resources: r.gauge("weft_cp_resources", "Resources in the mesh state, by kind.", ["kind"]),
      cached: r.gauge(
        "weft_cp_cache_entries",
        "Entries kept by the control plane's caches and indexes (they return to zero as the mesh empties).",
        ["cache"],
      ),
      rss: r.gauge("process_resident_memory_bytes", "Resident set size of the control plane's process.", []),
      heapUsed: r.gauge("nodejs_heap_size_used_bytes", "V8 heap in use.", []),
      heapTotal: r.gauge("nodejs_heap_size_total_bytes", "V8 heap allocated.", []),
      heapLive: r.gauge(
        "nodejs_heap_live_bytes",
        "V8 heap in use right after the last major garbage collection (0 before the first).",
        [],
      ),
      majorGcs: r.counter("nodejs_gc_major_total", "Major garbage collections (V8's own; none forced).", []),
      external: r.gauge("nodejs_external_memory_bytes", "Memory held outside the V8 heap (buffers).", []),
      cpu: r.counter("process_cpu_seconds_total", "User and system CPU time of the process.", []),
    };
    this.#delay = monitorEventLoopDelay({ resolution: 10 });
    this.#delay.enable();
    // Nothing forces a collection: this only notes what a major one (V8's own) left.
    this.#gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries())
        if ((e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
          this.#liveHeap = getHeapStatistics().used_heap_size;
          this.#majorGcs++;
        }
    });
    this.#gc.observe({ entryTypes: ["gc"] });
  }

  /** Every series, read now, as Prometheus text. */
  render(): string {
    const f = this.#f;
    const src = this.#src;
    const set = (family: Family, value: number, ...labels: string[]) =>
      (family.series(...labels).value = value);
    set(f.connected, src.connectedProxies());
    set(f.compiled, src.snapshots.compiled);
    set(f.inconsistent, src.snapshots.inconsistent);
    const { recomputed } = src.state.prepared();
    set(f.recomputed, recomputed.clusters, "cluster");
    set(f.recomputed, recomputed.routes, "route_table");
    set(f.pushes, src.pushes.snapshots, "snapshot");
    set(f.pushes, src.pushes.deltas, "delta");
    set(f.pushedBytes, src.pushes.bytes);
    set(f.coalesced, src.snapshots.coalesced);
    for (const [queue, stats] of [
      ["stream", src.admission.stream()],
      ["signing", src.admission.signing()],
    ] as const) {
      set(f.queued, stats.queued, queue);
      set(f.running, stats.running, queue);
      set(f.admitted, stats.admitted, queue);
      for (const [reason, n] of Object.entries(stats.refused)) set(f.refused, n, queue, reason);
    }
    set(f.signed, src.certificatesSigned());
    set(f.stalled, src.stalledMs() / 1000);
    set(f.delay, this.#delay.percentile(50) / 1e9, "0.5");
    set(f.delay, this.#delay.percentile(99) / 1e9, "0.99");
    set(f.delay, this.#delay.max / 1e9, "1");
    this.#delay.reset();
    // Kinds and caches: a fixed set of names; a kind gone from the mesh reads 0, it is not dropped.
    for (const s of f.resources.allSeries()) s.value = 0;
    for (const [kind, n] of Object.entries(src.state.counts())) set(f.resources, n, kind);
    for (const [cache, n] of Object.entries(src.state.prepared().sizes())) set(f.cached, n, cache);
    set(f.cached, src.snapshots.size, "proxy_snapshots");
    const mem = process.memoryUsage();
    set(f.rss, mem.rss);
    set(f.heapUsed, mem.heapUsed);
    set(f.heapTotal, mem.heapTotal);
    set(f.heapLive, this.#liveHeap);
    set(f.majorGcs, this.#majorGcs);
    set(f.external, mem.external);
    const cpu = process.cpuUsage();
    set(f.cpu, (cpu.user + cpu.system) / 1e6);
    return renderPrometheus(this.#registry);
  }

  stop(): void {
    this.#delay.disable();
    this.#gc.disconnect();
  }
}
