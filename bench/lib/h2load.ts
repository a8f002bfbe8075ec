// h2load as the closed-loop load of the HTTP/2 and gRPC cases (`-c N -m M`: N connections, M streams
// in flight on each), and the request options those cases add to every h2load run (a request body
// file, extra headers). The HTTP/1.1 cases keep wrk (load.ts).

import type { Target, WrkResult } from "./load.ts";
import { runToEnd } from "./proc.ts";

/** What an HTTP/2 target asks of h2load besides the URL. */
export interface H2Request {
  /** POSTs this file as every request's body (`-d`). */
  dataFile?: string;
  /** Extra request headers, "name: value". */
  headers?: string[];
}

/** The h2load arguments for `t`'s request: its authority, body and headers (HTTP/2 only). */
export function h2RequestArgs(t: Target): string[] {
  const args: string[] = [];
  if (t.host) args.push("-H", `:authority: ${t.host}`);
  if (t.h2?.dataFile) args.push("-d", t.h2.dataFile);
  for (const h of t.h2?.headers ?? []) args.push("-H", h);
  return args;
}

/** Parses h2load's summary into wrk's shape: every non-2xx status and every failed request counts. */
export function parseH2loadSummary(out: string): WrkResult {
  const fin = out.match(/finished in ([\d.]+)(ms|s), ([\d.]+) req\/s/);
  const req = out.match(
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/,
  );
  const codes = out.match(/status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/);
  if (!fin || !req || !codes) throw new Error(`h2load: unexpected output:\n${out}`);
  const seconds = Number(fin[1]) / (fin[2] === "ms" ? 1000 : 1);
  const succeeded = Number(req[4]);
  return {
    requests: succeeded,
    seconds,
    rps: succeeded / seconds,
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    // h2load's "failed" includes the errored and timed-out ones; non-2xx responses are counted above.
    socketErrors: Number(req[5]),
  };
}

/** Closed loop: `h2load -c connections -m streams -D seconds`, pinned to `core`. */
export async function runH2Closed(
  t: Target,
  connections: number,
  streams: number,
  seconds: number,
  core: number,
): Promise<WrkResult> {
  const args = ["-t1", `-c${connections}`, `-m${streams}`, "-D", String(seconds), ...h2RequestArgs(t), t.url];
  const { code, out } = await runToEnd(core, "h2load", args, (seconds + 15) * 1000);
  if (code !== 0)
    throw new Error(`h2load ${code === null ? "killed: still running" : `exited ${code}`}:\n${out}`);
  return parseH2loadSummary(out);
}
