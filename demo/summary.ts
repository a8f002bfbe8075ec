// The live summary: a table of golden signals per service, what to try next, where the logs are.
// Rendering is a pure function of the rows; Screen redraws it in place on a terminal and prints
// plain blocks otherwise (a pipe, a CI log, a test).

import type { SummaryRow } from "./scraper.ts";

export interface SummaryView {
  rows: SummaryRow[];
  uptimeMs: number;
  controlPlane: string;
  /** How to invoke the CLI from the user's directory: "npx weft" or "node path/to/bin/weft.js". */
  cli: string;
  /** Path (relative to the user's directory) of the demo's folder, e.g. "demo". */
  demoDir: string;
  /** Path of docs/demo.md, the guided scenarios. */
  docsFile: string;
  logsDir: string;
  /** A reviews sidecar's admin port and the traffic sidecar's outbound port, for the curl examples. */
  reviewsAdminPort?: number;
  trafficOutboundPort?: number;
}

const COLUMNS = ["SERVICE", "REQ/S", "SUCCESS", "CALLERS OK", "P50", "P99", "REQUESTS"];

export function formatRate(rps: number | undefined): string {
  return rps === undefined ? "-" : rps.toFixed(1);
}

export function formatSuccess(s: number | undefined): string {
  if (s === undefined) return "-";
  return s === 1 ? "100%" : `${(Math.floor(s * 1000) / 10).toFixed(1)}%`;
}

export function formatLatency(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  const ms = seconds * 1000;
  if (ms < 10) return `${ms.toFixed(1)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(2)}s`;
}

export function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * The table: a header and one line per row, columns aligned; version rows indented under their
 * service, with CALLERS OK left empty (callers do not know which version answered).
 */
export function renderTable(rows: SummaryRow[]): string[] {
  const cells = rows.map((r) => [
    r.sub ? `  ${r.name}` : r.name,
    formatRate(r.signals.rps),
    formatSuccess(r.signals.success),
    r.sub ? "" : formatSuccess(r.callers?.success),
    formatLatency(r.signals.p50),
    formatLatency(r.signals.p99),
    String(r.signals.total),
  ]);
  const widths = COLUMNS.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join("  ");
  const out = [line(COLUMNS), ...cells.map(line)];
  rows.forEach((r, i) => {
    if (r.error) out[i + 1] += `  ! ${r.error}`;
  });
  return out;
}

/** One frame: the table (with a title line) and the footer (what to try, where things are). */
export function renderSummary(v: SummaryView): { table: string; footer: string } {
  const w = v.cli;
  const tries: [string, string][] = [
    [
      `${w} apply -f ${v.demoDir}/try/canary-1-90-10.yaml`,
      "canary: 10% of reviews to v2; then canary-2-50-50, canary-3-v2-only",
    ],
    [`${w} delete httproute reviews`, "balance over v1, v2 and v3 again"],
    [`${w} demo chaos reviews-v3 fail=0.3`, "make v3 fail 30% of requests (… reviews-v3 reset to stop)"],
    [`ls ${v.demoDir}/try`, "more: mirroring, faults, retries, ejection, circuit breaking, rate limits"],
    [`${w} get workloads`, "the sidecars registered with the control plane"],
  ];
  if (v.reviewsAdminPort)
    tries.push([
      `curl -s http://127.0.0.1:${v.reviewsAdminPort}/metrics`,
      "a sidecar's Prometheus metrics (reviews v1)",
    ]);
  if (v.trafficOutboundPort)
    tries.push([
      `curl -s -x http://127.0.0.1:${v.trafficOutboundPort} http://storefront/`,
      "call the mesh through a sidecar",
    ]);
  const width = Math.max(...tries.map(([c]) => c.length));
  const table = [
    `weft demo — up ${formatUptime(v.uptimeMs)} — requests served per service, last 10 s`,
    "",
    ...renderTable(v.rows),
  ];
  const footer = [
    "CALLERS OK: success (no 5xx or 429) as the callers' sidecars saw it, after retries, faults, circuit breaking",
    "",
    `Try (the CLI is \`${w} …\`; from elsewhere use the path to bin/weft.js):`,
    ...tries.map(([c, why]) => `  ${c.padEnd(width)}   # ${why}`),
    `Every file in ${v.demoDir}/try/ says what to run, watch and undo; the walk-through is ${v.docsFile}`,
    "",
    `Control plane ${v.controlPlane} · logs in ${v.logsDir}/ · Ctrl-C stops everything`,
  ];
  return { table: table.join("\n"), footer: footer.join("\n") };
}

/** Where the summary goes: redrawn in place on a terminal, appended as plain blocks otherwise. */
export class Screen {
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  private drawn = false;

  constructor(out: NodeJS.WriteStream = process.stdout) {
    this.out = out;
    this.tty = !!out.isTTY;
  }

  /** On a terminal the whole frame, in place; otherwise the table, and the footer only the first time. */
  draw(frame: { table: string; footer: string }): void {
    if (this.tty) {
      const text = `${frame.table}\n\n${frame.footer}`;
      // Home (clearing the screen the first time), draw, clear what is left of an older, longer frame.
      this.out.write(
        `${this.drawn ? "\x1b[H" : "\x1b[H\x1b[2J"}${text.replace(/\n/g, "\x1b[K\n")}\x1b[K\n\x1b[J`,
      );
    } else {
      this.out.write(this.drawn ? `${frame.table}\n\n` : `${frame.table}\n\n${frame.footer}\n\n`);
    }
    this.drawn = true;
  }

  /** A message after the live table: on a terminal, below it. */
  print(line: string): void {
    this.out.write(`${line}\n`);
  }
}
