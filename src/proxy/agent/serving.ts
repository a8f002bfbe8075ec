// Whether this instance takes traffic ("serving"), as its own sidecar sees it. The proxy registers
// with `serving: false` and says `serving: true` only once
//   - the sidecar can serve: certificate, first config snapshot, inbound listener up; and
//   - its app accepts connections (a TCP connect to the app port), or, when the snapshot has a
//     health check, the app passes one probe of that check;
// so a starting instance is never an endpoint that fails (Kubernetes' readiness gate, done by the
// sidecar). While serving it keeps checking that the app still accepts connections (every second by
// default); when it stops doing so (the app died or closed its port), the instance leaves the
// endpoints until the app is back. Draining leaves for good (`leave`).
//
// One probe at a time; while waiting to join, probes start 100 ms apart and back off to 1 s, so an
// app that never listens (a batch job under `weft run`) costs a connect a second. Health proper
// (thresholds, Unhealthy status, panic mode) stays health-check.ts' business.

import type { HealthCheck, ProxySnapshot } from "../../model/snapshot.ts";
import type { Source } from "../types.ts";
import { probeFor as healthProbeFor, realTimers, tcpProbe, type Probe, type Timers } from "./health-check.ts";

export interface ServingGateOptions {
  /** The sidecar itself can serve: certificate, config, inbound listener. */
  sidecarReady(): boolean;
  config: Source<ProxySnapshot>;
  /** Tells the control plane (ConfigClient.reportServing). */
  report(serving: boolean, detail: string): void;
  log?: (msg: string) => void;
  timers?: Timers;
  /** The probe that admits the app; tests replace the network. */
  probeFor?: (check: HealthCheck | undefined, address: string, port: number) => Probe;
  /** The first delay between probes while waiting to join (ms, default 100), doubling up to `maxStartIntervalMs` (1000). */
  startIntervalMs?: number;
  maxStartIntervalMs?: number;
  /** Between checks that a serving app still accepts connections (ms, default 1000). */
  watchIntervalMs?: number;
  /** Consecutive failed connects that take a serving instance out (default 2). */
  failuresToLeave?: number;
}

const CONNECT_TIMEOUT_MS = 1000;

/** Joins with the health check's probe when there is one, else with a TCP connect. */
export function admissionProbe(check: HealthCheck | undefined, address: string, port: number): Probe {
  return check ? healthProbeFor(check, address, port) : tcpProbe(address, port, CONNECT_TIMEOUT_MS);
}

export class ServingGate {
  serving = false;
  readonly #opts: ServingGateOptions;
  readonly #timers: Timers;
  #timer: unknown = undefined;
  #probing = false;
  #left = false;
  #started = false;
  #failures = 0;
  #startDelay: number;

  constructor(opts: ServingGateOptions) {
    this.#opts = opts;
    this.#timers = opts.timers ?? realTimers;
    this.#startDelay = opts.startIntervalMs ?? 100;
  }

  start(): void {
    if (this.#started || this.#left) return;
    this.#started = true;
    this.#schedule(0);
  }

  /** Something the gate waits for may have happened (config in, listener up): look now. */
  poke(): void {
    if (!this.#started || this.#left || this.serving || this.#probing) return;
    this.#startDelay = this.#opts.startIntervalMs ?? 100;
    this.#schedule(0);
  }

  /** Leaves the endpoints for good (draining). Returns whether the instance was serving. */
  leave(detail = "draining"): boolean {
    const was = this.serving;
    this.#left = true;
    this.#cancel();
    if (was) this.#set(false, detail);
    return was;
  }

  #cancel(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    this.#cancel();
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, ms);
  }

  async #tick(): Promise<void> {
    if (this.#left) return;
    const snap = this.#opts.config.current();
    if (!snap || !this.#opts.sidecarReady()) return this.#waitToJoin();
    const { appAddress, appPort, healthCheck } = snap.inbound;
    // While serving, only "does it still accept connections"; the health check runs on its own.
    const check = this.serving ? undefined : healthCheck;
    const probe = (this.#opts.probeFor ?? admissionProbe)(check, appAddress, appPort);
    this.#probing = true;
    let r;
    try {
      r = await probe();
    } catch (err) {
      r = { ok: false, detail: String((err as Error)?.message ?? err) };
    } finally {
      this.#probing = false;
    }
    if (this.#left) return;
    const where = `${appAddress}:${appPort}`;
    if (!this.serving) {
      if (!r.ok) return this.#waitToJoin();
      this.#failures = 0;
      this.#set(true, `app on ${where} ready (${r.detail})`);
    } else if (r.ok) {
      this.#failures = 0;
    } else if (++this.#failures >= (this.#opts.failuresToLeave ?? 2)) {
      this.#failures = 0;
      this.#startDelay = this.#opts.startIntervalMs ?? 100;
      this.#set(false, `app on ${where} stopped accepting connections (${r.detail})`);
      return this.#waitToJoin();
    }
    this.#schedule(this.#opts.watchIntervalMs ?? 1000);
  }

  #waitToJoin(): void {
    const delay = this.#startDelay;
    this.#startDelay = Math.min(delay * 2, this.#opts.maxStartIntervalMs ?? 1000);
    this.#schedule(delay);
  }

  #set(serving: boolean, detail: string): void {
    this.serving = serving;
    this.#opts.log?.(serving ? `serving: ${detail}` : `not serving: ${detail}`);
    this.#opts.report(serving, detail);
  }
}
