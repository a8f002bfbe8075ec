// What can be tuned about a demo run: from runDemo()'s argument first, then WEFT_DEMO_* environment
// variables (the `weft demo` command takes no flags), then defaults.

export interface DemoOptions {
  /** Stop by itself this long after traffic started (tests). Default: run until Ctrl-C. */
  durationMs?: number;
  /** No live table, only start and stop messages. */
  quiet?: boolean;
  /** Control plane ports (default 15000 and 15010, as `weft control-plane`). */
  cpPort?: number;
  streamPort?: number;
  /** Demo traffic rate (default 20 req/s). */
  rps?: number;
  /** Summary refresh period (default 2000 ms). */
  intervalMs?: number;
  /** The user's directory (default process.cwd()); the data directory is .weft in it. */
  cwd?: string;
}

export interface ResolvedOptions {
  durationMs?: number;
  quiet: boolean;
  cpPort: number;
  streamPort: number;
  rps: number;
  intervalMs: number;
  cwd: string;
}

export class OptionError extends Error {}

export function resolveOptions(
  opts: DemoOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedOptions {
  const num = (name: string, v: number | undefined, check: (n: number) => boolean): number | undefined => {
    const raw = v ?? (env[name] !== undefined && env[name] !== "" ? Number(env[name]) : undefined);
    if (raw === undefined) return undefined;
    if (!check(raw)) throw new OptionError(`${name}=${env[name] ?? v} is not valid`);
    return raw;
  };
  const port = (n: number) => Number.isInteger(n) && n > 0 && n < 65536;
  const positive = (n: number) => Number.isFinite(n) && n > 0;
  return {
    durationMs: num("WEFT_DEMO_DURATION_MS", opts.durationMs, positive),
    quiet: opts.quiet ?? ["1", "true", "yes"].includes((env.WEFT_DEMO_QUIET ?? "").toLowerCase()),
    cpPort: num("WEFT_DEMO_CP_PORT", opts.cpPort, port) ?? 15000,
    streamPort: num("WEFT_DEMO_STREAM_PORT", opts.streamPort, port) ?? 15010,
    rps: num("WEFT_DEMO_RPS", opts.rps, positive) ?? 20,
    intervalMs: num("WEFT_DEMO_INTERVAL_MS", opts.intervalMs, positive) ?? 2000,
    cwd: opts.cwd ?? process.cwd(),
  };
}
