// The simulator's results as the markdown table of issue 8 (one row per N and scoping), with how far
// a step got when it did not finish, and the notes that make the numbers readable.

import type { ChangeResult, MemoryReading, ScenarioResult } from "./scenario.ts";

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1048576).toFixed(2)} MB`;
}

function connectCell(r: ScenarioResult): string {
  const c = r.connect;
  const d = c.discovery;
  const waits = d
    ? `; first calls ${pair(d.p50, d.p99)}${d.missed ? `, ${d.missed} of ${d.calls} missed` : ""}`
    : "";
  if (c.finished) return `${duration(c.ms)}${waits}`;
  const failed = c.failed ? `, ${c.failed} failed: ${c.firstFailure ?? "?"}` : "";
  return `did not finish in ${r.timeoutS} s (${c.acked}/${r.proxies} ACKed, ${c.ready} ready, ${c.certs} certificates${failed})${waits}`;
}

/** How the table names a scoping. */
export function scopingName(s: ScenarioResult["scoping"]): string {
  return s === "reach" ? "`--reach` 3" : s === "full" ? "full (`--reach '*'`)" : "on demand (3 called)";
}

function pair(p50?: number, p99?: number): string {
  if (p50 === undefined || p99 === undefined) return "–";
  return p50 >= 1000 || p99 >= 1000 ? `${duration(p50)} / ${duration(p99)}` : `${p50} / ${p99} ms`;
}

function changeCell(c: ChangeResult, timeoutS: number): string {
  const apply = c.applyMs === undefined ? "" : `; apply ${duration(c.applyMs)}`;
  if (c.error) return `${c.error} (${c.reached}/${c.affected} ACKed)`;
  if (!c.finished)
    return `did not finish in ${timeoutS} s: ${c.reached}/${c.affected} ACKed, ${pair(c.p50, c.p99)} of those${apply}`;
  return `${pair(c.p50, c.p99)} (${c.affected} proxies${apply}; ${bytes(c.bytes)} pushed)`;
}

function lossCell(r: ScenarioResult): string {
  const lease = r.errors.lease_lost ?? 0;
  const other = Object.entries(r.errors)
    .filter(([code]) => code !== "lease_lost")
    .map(([code, n]) => `${code} ${n}`);
  const restarts = r.startRetries ? `; ${r.startRetries} failed starts retried (${r.lastStartError})` : "";
  return `${lease} / ${r.disconnects}${other.length ? ` (${other.join(", ")})` : ""}${restarts}`;
}

export function markdownTable(results: ScenarioResult[]): string {
  const head =
    "| N proxies (S = N/2 services) | scoping | connect all | CP CPU s (sim) | CP RSS peak / settled | " +
    "snapshot p50 / max | HTTPRoute change: apply → ACK p50 / p99 | Workload joins: apply → ACK p50 / p99 | " +
    "lease lost / streams lost |\n|---|---|---|---|---|---|---|---|---|";
  const rows = results.map((r) =>
    [
      "",
      `${r.proxies} (S = ${r.services})`,
      scopingName(r.scoping),
      connectCell(r),
      `${r.cp.cpuS.toFixed(1)} (${r.simulator.cpuS.toFixed(1)})`,
      `${r.cp.rssPeakMb} / ${r.cp.rssSettledMb} MB`,
      r.snapshotBytes.proxies ? `${bytes(r.snapshotBytes.p50)} / ${bytes(r.snapshotBytes.max)}` : "–",
      changeCell(r.route, r.timeoutS),
      changeCell(r.join, r.timeoutS),
      lossCell(r),
      "",
    ]
      .join(" | ")
      .trim(),
  );
  return [head, ...rows].join("\n");
}

function reading(m: MemoryReading | undefined): string {
  return m === undefined
    ? "–"
    : `${m.rssMb} / ${m.heapUsedMb} (${m.heapLiveMb}) / ${m.externalMb} MB, ${m.cacheEntries}`;
}

/** Step 5, one row per run: the control plane's memory before and after half the mesh went. */
export function shrinkTable(results: ScenarioResult[]): string {
  const head =
    "| N proxies | scoping | removed: services / proxies | CP RSS / heap used (live) / external, cache entries: before | after | " +
    "settled in |\n|---|---|---|---|---|---|";
  const rows = results.map((r) => {
    const s = r.shrink;
    const done = s.error
      ? `failed: ${s.error}`
      : s.finished
        ? duration(s.ms)
        : `did not settle (${duration(s.ms)})`;
    return `| ${r.proxies} | ${scopingName(r.scoping)} | ${s.servicesRemoved} / ${s.proxiesRemoved} | ${reading(s.before)} | ${reading(s.after)} | ${done} |`;
  });
  return [head, ...rows].join("\n");
}

export const SHRINK_NOTES = `- shrink: the upper half of the Services goes — their proxies say bye and stop, the Services are
  deleted through the config API. Each reading is taken once no proxy was pushed anything for 2 s and
  5 s more have passed; nothing forces a GC. Heap used is the control plane's own report (GET /metrics,
  nodejs_heap_size_used_bytes), live what V8's last major collection left (nodejs_heap_live_bytes; the
  after reading waits up to 60 s for V8's first major collection since the shrink), external its
  memory outside the V8 heap (buffers); cache entries the sum of its weft_cp_cache_entries (index
  maps, compiled pieces, views, proxy snapshots).`;

export const TABLE_NOTES = `- connect all: from starting every proxy at once to the last one's being ready for its app (each
  proxy: identity, a CSR with its own key, the config stream, hello, first snapshot, ACK; on demand,
  then its app's first call to each of its 3 services, which subscribes and waits for that service's
  config, as the outbound listener does). "first calls": those waits, p50 / p99, during the storm.
- CP CPU s (sim): the control plane's user + system CPU from the start of the connect step to the end of
  the run, and in brackets the simulator's over the same time (all its proxies share one core: when that
  nears the run's wall time, the simulator, not the control plane, set the pace);
  RSS peak is the control plane's VmHWM, settled its RSS once no proxy had been pushed anything for 2 s
  (or after 30 s of pushes).
- snapshot: the encoded size (JSON) of the snapshot each proxy runs once settled.
- apply → ACK: from just before the apply request is sent to each affected proxy's ACK of the first
  snapshot that shows the change (affected = the proxies whose snapshot had the service when the apply
  was sent); p50 / p99 over those proxies, with how many there were, how long the apply took to return,
  and the config bytes all proxies received from the apply to the last ACK (snapshots and deltas).
- lease lost / streams lost: streams the control plane ended with \`lease_lost\` (other codes in brackets),
  and config streams the proxies lost (each one reconnects, as a real proxy does); then starts that failed
  before the certificate came (reset, timeout, 5xx), each retried with backoff as a supervisor would.`;
