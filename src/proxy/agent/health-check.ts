// Active health checking of the local app, as a Kubernetes readiness probe does it: the sidecar probes
// its own app (HTTP GET of a path, or a TCP connect) every interval, and reports each change of state
// to the control plane, which records it as the Workload's status — so every proxy stops sending to an
// instance whose app is unhealthy, not only this one.
//
// State changes need `healthyThreshold` consecutive successes or `unhealthyThreshold` consecutive
// failures. A new check starts HEALTHY (what the control plane assumes of a Workload without a
// status anyway) and first probes one interval after the start; the instance has already passed one
// probe of the same check before it joined the endpoints (serving.ts). A check restarted because its
// settings changed keeps the state the old one had, so tuning an interval does not briefly readmit
// an unhealthy instance.
//
// The proxy's /ready does not depend on this: readiness is about the sidecar (config and
// certificate); app health is the control plane's business.

import { request } from "node:http";
import { connect } from "node:net";
import { logSafe } from "../../model/log-safe.ts";
import type { HealthCheck, ProxySnapshot } from "../../model/snapshot.ts";
import type { ProxyMetrics } from "../metrics/registry.ts";
import type { Source } from "../types.ts";

export type ProbeResult =
  | { ok: true; result: "success"; detail: string }
  /** failure: the app answered, but not as expected; timeout / error: it did not answer. */
  | { ok: false; result: "failure" | "timeout" | "error"; detail: string };

export type Probe = () => Promise<ProbeResult>;

/** The scheduling the checker needs; injectable so tests run probes on a hand-driven clock. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

const MAX_DETAIL = 200;

/** 200–399 when the list is empty, as Kubernetes' HTTP probes. */
export function isExpectedStatus(status: number, expected: readonly number[]): boolean {
  return expected.length === 0 ? status >= 200 && status < 400 : expected.includes(status);
}

/**
 * GET `path` on the app over a fresh connection (no pooling: a probe must see whether the app still
 * accepts connections), with a deadline for the whole exchange. The body is read and discarded.
 */
export function httpProbe(
  address: string,
  port: number,
  path: string,
  expectedStatuses: readonly number[],
  timeoutMs: number,
): Probe {
  const what = `GET ${path}`;
  return () =>
    new Promise<ProbeResult>((resolve) => {
      let settled = false;
      let verdict: ProbeResult | undefined;
      const done = (r: ProbeResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve(r);
      };
      const req = request(
        {
          host: address,
          port,
          path,
          method: "GET",
          agent: false,
          headers: { "user-agent": "weft-health-check", connection: "close" },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          res.resume();
          const v: ProbeResult = (verdict = isExpectedStatus(status, expectedStatuses)
            ? { ok: true, result: "success", detail: `${what}: ${status}` }
            : { ok: false, result: "failure", detail: `${what}: ${status}` });
          // The status decides; the body is drained only so that the connection closes cleanly.
          res.on("end", () => done(v));
          res.on("error", () => done(v));
        },
      );
      const timer = setTimeout(
        () =>
          done(
            verdict ?? { ok: false, result: "timeout", detail: `${what}: no answer within ${timeoutMs} ms` },
          ),
        timeoutMs,
      );
      req.on("error", (err: NodeJS.ErrnoException) =>
        done({ ok: false, result: "error", detail: `${what}: ${describeError(err)}` }),
      );
      req.end();
    });
}

/** Healthy when a TCP connection to the app can be opened within the timeout. */
export function tcpProbe(address: string, port: number, timeoutMs: number): Probe {
  return () =>
    new Promise<ProbeResult>((resolve) => {
      let settled = false;
      const socket = connect({ host: address, port });
      const done = (r: ProbeResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(r);
      };
      const timer = setTimeout(
        () => done({ ok: false, result: "timeout", detail: `connect: no answer within ${timeoutMs} ms` }),
        timeoutMs,
      );
      socket.on("connect", () => done({ ok: true, result: "success", detail: "connect: ok" }));
      socket.on("error", (err: NodeJS.ErrnoException) =>
        done({ ok: false, result: "error", detail: `connect: ${describeError(err)}` }),
      );
    });
}

function describeError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "connection reset";
    default:
      return (err.code ?? err.message).slice(0, MAX_DETAIL);
  }
}

export interface HealthCheckerOptions {
  probe: Probe;
  intervalMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** Default true (see the top of this file). */
  initialHealthy?: boolean;
  timers?: Timers;
  /** Every probe's outcome (metrics). */
  onResult?: (r: ProbeResult) => void;
  /** A change of state, with what the last probe saw. */
  onChange?: (healthy: boolean, detail: string) => void;
}

/** Runs one probe every interval (never two at once) and turns results into a thresholded state. */
export class HealthChecker {
  healthy: boolean;
  /** What the last probe saw ("" before the first). */
  detail = "";
  readonly #opts: HealthCheckerOptions;
  readonly #timers: Timers;
  #timer: unknown = undefined;
  #running = false;
  #successes = 0;
  #failures = 0;

  constructor(opts: HealthCheckerOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? realTimers;
    this.healthy = opts.initialHealthy ?? true;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  /** Stops probing; a probe in flight finishes, but its result is ignored. */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    // The next probe is an interval after the previous one ended, so a slow app is never probed twice at once.
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      void this.#probeOnce();
    }, this.#opts.intervalMs);
  }

  async #probeOnce(): Promise<void> {
    let r: ProbeResult;
    try {
      r = await this.#opts.probe();
    } catch (err) {
      r = { ok: false, result: "error", detail: String((err as Error)?.message ?? err).slice(0, MAX_DETAIL) };
    }
    if (!this.#running) return;
    this.#record(r);
    this.#schedule();
  }

  #record(r: ProbeResult): void {
    this.detail = r.detail;
    this.#opts.onResult?.(r);
    if (r.ok) {
      this.#failures = 0;
      this.#successes++;
      if (!this.healthy && this.#successes >= this.#opts.healthyThreshold) this.#flip(true);
    } else {
      this.#successes = 0;
      this.#failures++;
      if (this.healthy && this.#failures >= this.#opts.unhealthyThreshold) this.#flip(false);
    }
  }

  #flip(healthy: boolean): void {
    this.healthy = healthy;
    this.#opts.onChange?.(healthy, this.detail);
  }
}

export interface AppHealthOptions {
  config: Source<ProxySnapshot>;
  metrics: ProxyMetrics;
  /** Tells the control plane (ConfigClient.reportHealth). */
  report: (healthy: boolean, detail: string) => void;
  log?: (msg: string) => void;
  timers?: Timers;
  /** Builds the probe for a check; tests replace the network. */
  probeFor?: (check: HealthCheck, address: string, port: number) => Probe;
}

export function probeFor(check: HealthCheck, address: string, port: number): Probe {
  return check.http
    ? httpProbe(address, port, check.http.path, check.http.expectedStatuses, check.timeoutMs)
    : tcpProbe(address, port, check.timeoutMs);
}

/**
 * Follows the snapshot's inbound.healthCheck: starts a checker when one appears, restarts it when its
 * settings (or the app's address) change, stops it when it goes away. Reports state changes.
 */
export class AppHealth {
  readonly #opts: AppHealthOptions;
  readonly #unsubscribe: () => void;
  #checker: HealthChecker | undefined;
  #key = "";
  /** What the control plane was last told (true until told otherwise: a Workload without status is healthy). */
  #reportedHealthy = true;

  constructor(opts: AppHealthOptions) {
    this.#opts = opts;
    const s = opts.config.current();
    if (s) this.#apply(s);
    this.#unsubscribe = opts.config.subscribe((snap) => this.#apply(snap));
  }

  /** The current state (true without a check). */
  get healthy(): boolean {
    return this.#checker?.healthy ?? true;
  }

  #apply(s: ProxySnapshot): void {
    const check = s.inbound.healthCheck;
    const key = check === undefined ? "" : JSON.stringify([check, s.inbound.appAddress, s.inbound.appPort]);
    if (key === this.#key) return;
    this.#key = key;
    const previous = this.#checker;
    previous?.stop();
    this.#checker = undefined;
    if (check === undefined) {
      // Without a check nothing would ever clear an Unhealthy status: clear it now.
      if (!this.#reportedHealthy) this.#report(true, "health check removed");
      // The gauge cannot be removed from the registry; 1 matches what the control plane now assumes.
      if (previous) this.#opts.metrics.appHealthy.series().value = 1;
      this.#opts.log?.("app health check stopped");
      return;
    }
    const m = this.#opts.metrics;
    const gauge = m.appHealthy.series();
    const checker = new HealthChecker({
      probe: (this.#opts.probeFor ?? probeFor)(check, s.inbound.appAddress, s.inbound.appPort),
      intervalMs: check.intervalMs,
      healthyThreshold: check.healthyThreshold,
      unhealthyThreshold: check.unhealthyThreshold,
      initialHealthy: previous?.healthy ?? true,
      timers: this.#opts.timers,
      onResult: (r) => m.healthChecks.series(r.result).value++,
      onChange: (healthy, detail) => {
        gauge.value = healthy ? 1 : 0;
        this.#report(healthy, detail);
      },
    });
    gauge.value = checker.healthy ? 1 : 0;
    this.#checker = checker;
    checker.start();
    this.#opts.log?.(
      `checking app health: ${check.http ? `GET ${check.http.path}` : "TCP connect"} every ${check.intervalMs} ms`,
    );
  }

  #report(healthy: boolean, detail: string): void {
    this.#reportedHealthy = healthy;
    this.#opts.log?.(`app is ${healthy ? "healthy" : "unhealthy"} (${logSafe(detail)})`);
    this.#opts.report(healthy, detail);
  }

  stop(): void {
    this.#unsubscribe();
    this.#checker?.stop();
    this.#checker = undefined;
  }
}
