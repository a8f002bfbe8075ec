// Results → ratios against the direct case → a markdown table (and the check against product.md §8).

import type { BenchSettings, Measurement } from "./measure.ts";

export interface CaseResult {
  id: string;
  label: string;
  group?: "h2" | "grpc";
  baseline?: string;
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

const HEADER =
  "| case | req/s | × direct | CPU µs/req (closed loop) | CPU × nginx | CPU µs/req (@rate) | p50 / p99 µs | added p50 / p99 µs | RSS idle / @rate / peak MB | ready ms | cores busy (proxy / load) |";
const ALIGN = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

/** One table row; ratios and added latency against `base` (the case's own direct), CPU against nginx's. */
function row(c: CaseResult, base: Measurement | undefined, nginxCpu: number | undefined): string {
  if (!c.m) return `| ${c.label} | skipped: ${c.skipped ?? "not run"} | | | | | | | | | |`;
  const m = c.m;
  const ratio = base ? m.throughput.rps / base.throughput.rps : undefined;
  const added50 = base ? m.latency.p50Us - base.latency.p50Us : undefined;
  const added99 = base ? m.latency.p99Us - base.latency.p99Us : undefined;
  const cpuX = m.cpuUsPerRequest !== undefined && nginxCpu ? m.cpuUsPerRequest / nginxCpu : undefined;
  const rss =
    m.rssIdleMb === undefined ? "–" : `${num(m.rssIdleMb)} / ${num(m.rssAtRateMb)} / ${num(m.rssPeakMb)}`;
  const k = m.coresDuringWrk;
  const cores = `${num(k.proxyBusy * 100)}% / ${num(k.loadBusy * 100)}%${k.steal > 0.01 ? ` (steal ${num(k.steal * 100)}%)` : ""}`;
  const label = m.problems.length ? `${c.label} **INVALID: ${m.problems.join("; ")}**` : c.label;
  const isBase = m === base;
  return (
    `| ${label} | ${num(m.throughput.rps)} | ${num(ratio, 2)} | ${num(m.cpuUsPerRequest, 1)} | ${num(cpuX, 2)} | ${num(m.cpuUsPerRequestAtRate, 1)} | ` +
    `${num(m.latency.p50Us)} / ${num(m.latency.p99Us)} | ${isBase ? "–" : `${signed(added50)} / ${signed(added99)}`} | ${rss} | ${num(c.startupMs)} | ${cores} |`
  );
}

export function markdown(r: Report): string {
  const byId = (id: string) => r.cases.find((c) => c.id === id)?.m;
  const nginxCpu = byId("nginx")?.cpuUsPerRequest;
  const s = r.settings;
  const lines = [
    `Run ${r.startedAt}, ${num(r.elapsedSeconds)} s. Closed loop: \`wrk -t1 -c${s.wrkConnections} -d${s.wrkSeconds}s\`; ` +
      `latency: \`h2load --h1 -c1 --rps ${s.rateRps} -D ${s.rateSeconds}\` (after ${s.warmupSeconds} s warm-up). ` +
      `Proxies on core ${s.proxyCore}; upstream and load generators on core ${s.loadCore}. ` +
      `CPU × nginx: the case's CPU µs/request ÷ nginx's one hop in this run.`,
    "",
    HEADER,
    ALIGN,
    ...r.cases.filter((c) => !c.group).map((c) => row(c, byId("direct"), nginxCpu)),
  ];
  const h2 = r.cases.filter((c) => c.group);
  if (h2.length) {
    lines.push(
      "",
      `HTTP/2 and gRPC unary (h2c from the load generator). Closed loop: \`h2load -t1 -c${s.h2Connections} -m${s.h2Streams} -D ${s.wrkSeconds}\`; ` +
        `latency: \`h2load -c1 -m1 --rps ${s.rateRps} -D ${s.rateSeconds}\`. × direct and added latency are against the same protocol's direct case; ` +
        "CPU × nginx against nginx's HTTP/1.1 one hop above.",
      "",
      HEADER,
      ALIGN,
      ...h2.map((c) => row(c, c.baseline ? byId(c.baseline) : c.m, nginxCpu)),
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
  const cpuChecks = nginxCpuChecks(r);
  if (cpuChecks.length)
    lines.push(
      "",
      "Against issue 7 §5's bars (CPU µs/request ÷ nginx's one hop, same run):",
      "",
      ...cpuChecks,
    );
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

/** Issue 7 §5: one hop ≤ 1.3× nginx's CPU per request, a sidecar pair (any protocol) ≤ 3× nginx's one hop. */
const NGINX_CPU_BARS: [id: string, limit: number][] = [
  ["weft-hop", 1.3],
  ["weft-mtls", 3],
  ["weft-h2", 3],
  ["weft-grpc", 3],
];

function nginxCpuChecks(r: Report): string[] {
  const nginx = r.cases.find((c) => c.id === "nginx")?.m?.cpuUsPerRequest;
  if (!nginx) return [];
  const out: string[] = [];
  for (const [id, limit] of NGINX_CPU_BARS) {
    const c = r.cases.find((x) => x.id === id);
    const cpu = c?.m?.cpuUsPerRequest;
    if (!c || cpu === undefined) continue;
    const x = cpu / nginx;
    out.push(
      `- ${c.label}: ${num(cpu, 1)} µs = ${num(x, 2)}× nginx's ${num(nginx, 1)} µs (≤ ${limit}×) ${x <= limit ? "ok" : "MISSED"}`,
    );
  }
  return out;
}
