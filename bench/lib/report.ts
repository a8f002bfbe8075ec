// Results → ratios against the direct case → a markdown table (and the check against product.md §8).

import type { BenchSettings, Measurement } from "./measure.ts";

export interface CaseResult {
  id: string;
  label: string;
  /** Set when the case could not be measured (e.g. the proxy did not start). */
  skipped?: string;
  startupMs?: number;
  notes?: string[];
  m?: Measurement;
}

export interface Report {
  startedAt: string;
  elapsedSeconds: number;
  settings: Omit<BenchSettings, "workDir">;
  environment: Record<string, string>;
  /** RSS of an idle Node process running an empty .mjs and an empty .ts entry. */
  nodeBaseline: { emptyJsMb: number; emptyTsMb: number };
  cases: CaseResult[];
}

const num = (v: number | undefined, digits = 0) =>
  v === undefined || !Number.isFinite(v)
    ? "–"
    : v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const signed = (v: number | undefined) =>
  v === undefined || !Number.isFinite(v) ? "–" : `${v >= 0 ? "+" : ""}${num(v)}`;

/** Busy fraction of an idle core above which a case is flagged as measured on a noisy host. */
const NOISY = 0.05;

export function markdown(r: Report): string {
  const direct = r.cases.find((c) => c.id === "direct")?.m;
  const lines = [
    `Run ${r.startedAt}, ${num(r.elapsedSeconds)} s. Closed loop: \`wrk -t1 -c${r.settings.wrkConnections} -d${r.settings.wrkSeconds}s\`; ` +
      `latency: \`h2load --h1 -c1 --rps ${r.settings.rateRps} -D ${r.settings.rateSeconds}\` (after ${r.settings.warmupSeconds} s warm-up). ` +
      `Proxies on core ${r.settings.proxyCore}; upstream and load generators on core ${r.settings.loadCore}.`,
    "",
    "| case | req/s | × direct | CPU µs/req (wrk) | CPU µs/req (@rate) | p50 / p99 µs | added p50 / p99 µs | RSS idle / @rate / peak MB | ready ms | cores busy (proxy / load) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const c of r.cases) {
    if (!c.m) {
      lines.push(`| ${c.label} | skipped: ${c.skipped ?? "not run"} | | | | | | | | |`);
      continue;
    }
    const m = c.m;
    const ratio = direct ? m.throughput.rps / direct.throughput.rps : undefined;
    const added50 = direct ? m.latency.p50Us - direct.latency.p50Us : undefined;
    const added99 = direct ? m.latency.p99Us - direct.latency.p99Us : undefined;
    const rss =
      m.rssIdleMb === undefined ? "–" : `${num(m.rssIdleMb)} / ${num(m.rssAtRateMb)} / ${num(m.rssPeakMb)}`;
    const k = m.coresDuringWrk;
    const cores = `${num(k.proxyBusy * 100)}% / ${num(k.loadBusy * 100)}%${k.steal > 0.01 ? ` (steal ${num(k.steal * 100)}%)` : ""}`;
    const label = m.problems.length ? `${c.label} **INVALID: ${m.problems.join("; ")}**` : c.label;
    lines.push(
      `| ${label} | ${num(m.throughput.rps)} | ${num(ratio, 2)} | ${num(m.cpuUsPerRequest, 1)} | ${num(m.cpuUsPerRequestAtRate, 1)} | ` +
        `${num(m.latency.p50Us)} / ${num(m.latency.p99Us)} | ${c.id === "direct" ? "–" : `${signed(added50)} / ${signed(added99)}`} | ${rss} | ${num(c.startupMs)} | ${cores} |`,
    );
  }
  const notes = r.cases.flatMap((c) => {
    const out = (c.notes ?? []).map((n) => `- ${c.label}: ${n}`);
    const q = c.m?.coresIdleBefore;
    if (q && Math.max(q.proxyBusy, q.loadBusy) > NOISY) {
      out.push(
        `- ${c.label}: **other load on the host** before it was measured (cores ${num(q.proxyBusy * 100)}% / ` +
          `${num(q.loadBusy * 100)}% busy while idle): its figures are less reliable`,
      );
    }
    return out;
  });
  if (notes.length) lines.push("", ...notes);
  lines.push(
    "",
    `For scale: an idle Node ${r.environment.node} process is ${num(r.nodeBaseline.emptyJsMb)} MB RSS, ` +
      `${num(r.nodeBaseline.emptyTsMb)} MB when its entry is a .ts file (type stripping).`,
  );
  const checks = targetChecks(r);
  if (checks.length) lines.push("", "Against the bars in product.md §8:", "", ...checks);
  return lines.join("\n") + "\n";
}

interface Bar {
  what: string;
  actual: (m: Measurement, c: CaseResult, d: Measurement) => number | undefined;
  limit: number;
  atLeast?: boolean;
}

const ONE_HOP: Bar[] = [
  {
    what: "throughput × direct",
    actual: (m, _c, d) => m.throughput.rps / d.throughput.rps,
    limit: 0.7,
    atLeast: true,
  },
  { what: "CPU µs/request", actual: (m) => m.cpuUsPerRequest, limit: 40 },
  { what: "added p50 µs", actual: (m, _c, d) => m.latency.p50Us - d.latency.p50Us, limit: 80 },
  { what: "added p99 µs", actual: (m, _c, d) => m.latency.p99Us - d.latency.p99Us, limit: 400 },
  { what: "RSS idle MB", actual: (m) => m.rssIdleMb, limit: 50 },
  { what: `RSS at the fixed rate MB`, actual: (m) => m.rssAtRateMb, limit: 64 },
  { what: "ready ms", actual: (_m, c) => c.startupMs, limit: 300 },
];

const PAIR: Bar[] = [
  {
    what: "throughput × direct",
    actual: (m, _c, d) => m.throughput.rps / d.throughput.rps,
    limit: 0.3,
    atLeast: true,
  },
  { what: "added p50 µs", actual: (m, _c, d) => m.latency.p50Us - d.latency.p50Us, limit: 200 },
  { what: "added p99 µs", actual: (m, _c, d) => m.latency.p99Us - d.latency.p99Us, limit: 900 },
];

function targetChecks(r: Report): string[] {
  const d = r.cases.find((c) => c.id === "direct")?.m;
  if (!d) return [];
  const out: string[] = [];
  for (const [id, bars] of [
    ["weft-hop", ONE_HOP],
    ["weft-mtls", PAIR],
  ] as const) {
    const c = r.cases.find((x) => x.id === id);
    if (!c?.m) continue;
    const m = c.m;
    const parts = bars.map((b) => {
      const v = b.actual(m, c, d);
      const ok = v !== undefined && (b.atLeast ? v >= b.limit : v <= b.limit);
      const digits = b.limit < 10 ? 2 : 0;
      return `${b.what} ${num(v, digits)} (${b.atLeast ? "≥" : "≤"} ${b.limit}) ${ok ? "ok" : "MISSED"}`;
    });
    out.push(`- ${c.label}: ${parts.join("; ")}`);
  }
  return out;
}
