// The two load generators, pinned to the load core and bounded in time:
// - wrk, closed loop (-t1 -cN -dS): throughput and the request count CPU time is divided by;
// - h2load at a fixed rate (--h1 -c1 --rps R -D S --log-file): per-request times, from which we take
//   p50/p99 ourselves (h2load itself prints only min/max/mean/sd); without --h1 for HTTP/2 targets.
// (The HTTP/2 cases' closed loop is h2load too: h2load.ts.)

import { readFileSync, rmSync } from "node:fs";
import { h2RequestArgs, type H2Request } from "./h2load.ts";
import { runToEnd } from "./proc.ts";

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  non2xx: number;
  socketErrors: number;
  /** wrk's own closed-loop latency percentiles (µs); informative only. */
  p50Us?: number;
  p99Us?: number;
}

export interface RateResult {
  targetRps: number;
  achievedRps: number;
  samples: number;
  failed: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  meanUs: number;
}

const UNIT_US: Record<string, number> = { us: 1, ms: 1000, s: 1_000_000, m: 60_000_000 };

function wrkDuration(text: string): number {
  const m = text.match(/^([\d.]+)(us|ms|s|m)$/);
  if (!m) throw new Error(`wrk: cannot parse duration ${text}`);
  return Number(m[1]) * UNIT_US[m[2]];
}

export function parseWrk(out: string): WrkResult {
  const done = out.match(/(\d+) requests in ([\d.]+(?:us|ms|s|m)),/);
  const rps = out.match(/Requests\/sec:\s+([\d.]+)/);
  if (!done || !rps) throw new Error(`wrk: unexpected output:\n${out}`);
  const sock = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const p50 = out.match(/^\s+50%\s+(\S+)/m);
  const p99 = out.match(/^\s+99%\s+(\S+)/m);
  return {
    requests: Number(done[1]),
    seconds: wrkDuration(done[2]) / 1e6,
    rps: Number(rps[1]),
    non2xx: Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0),
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    p50Us: p50 ? wrkDuration(p50[1]) : undefined,
    p99Us: p99 ? wrkDuration(p99[1]) : undefined,
  };
}

export interface Target {
  url: string;
  /** Host header to send (routing key for the weft outbound listener). */
  host?: string;
  /** Set for the HTTP/2 and gRPC cases: h2load speaks h2c (no --h1) and sends this request. */
  h2?: H2Request;
}

export async function runWrk(
  t: Target,
  connections: number,
  seconds: number,
  core: number,
): Promise<WrkResult> {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency"];
  if (t.host) args.push("-H", `Host: ${t.host}`);
  const { code, out } = await runToEnd(core, "wrk", [...args, t.url], (seconds + 15) * 1000);
  if (code !== 0) throw new Error(`wrk exited ${code}:\n${out}`);
  return parseWrk(out);
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Per-request times from h2load's --log-file: start µs, status, µs to end of response. */
export function parseH2loadLog(text: string): { ok: number[]; failed: number } {
  const ok: number[] = [];
  let failed = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [, status, elapsed] = line.split("\t");
    if (status === "200") ok.push(Number(elapsed));
    else failed++;
  }
  ok.sort((a, b) => a - b);
  return { ok, failed };
}

export async function runFixedRate(
  t: Target,
  rps: number,
  seconds: number,
  core: number,
  logFile: string,
): Promise<RateResult> {
  // With --h1, h2load sends -H "host: X" as a second Host header; ":authority: X" replaces its own.
  // HTTP/2 targets: one connection, one stream at a time, like the HTTP/1.1 runs.
  const args = [
    ...(t.h2 ? ["-m1"] : ["--h1"]),
    "-c1",
    "-t1",
    `--rps=${rps}`,
    `-D`,
    String(seconds),
    `--log-file=${logFile}`,
    ...(t.h2 ? h2RequestArgs(t) : t.host ? ["-H", `:authority: ${t.host}`] : []),
  ];
  rmSync(logFile, { force: true });
  const { code, out } = await runToEnd(core, "h2load", [...args, t.url], (seconds + 15) * 1000);
  if (code !== 0)
    throw new Error(`h2load ${code === null ? "killed: still running" : `exited ${code}`}:\n${out}`);
  const summary = out.match(
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/,
  );
  if (!summary) throw new Error(`h2load: unexpected output:\n${out}`);
  const { ok, failed } = parseH2loadLog(readFileSync(logFile, "utf8"));
  return {
    targetRps: rps,
    achievedRps: ok.length / seconds,
    samples: ok.length,
    failed: Math.max(failed, Number(summary[5])),
    p50Us: percentile(ok, 50),
    p90Us: percentile(ok, 90),
    p99Us: percentile(ok, 99),
    p999Us: percentile(ok, 99.9),
    maxUs: ok.length ? ok[ok.length - 1] : NaN,
    meanUs: ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN,
  };
}
