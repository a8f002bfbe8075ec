// Retry decisions, kept apart from the request path so they can be tested with injected clocks:
//   - which failures a policy retries (RetryPolicy.on / codes),
//   - which methods are safe to repeat,
//   - the backoff before retry n: exponential with "full jitter" — uniform in [0, min(max, base·2^n)] —
//     so that clients that failed together do not come back together,
//   - the retry budget: retries to a destination may add at most `percent` % of its requests over a
//     sliding 10 s window, plus `minPerSecond` so that a quiet service can still retry. When a
//     destination is down, every request fails and retries would multiply the load on it; the
//     budget caps that at 1 + percent/100 (Linkerd's design, rather than a fixed attempt count).

import type { RetryCondition, RetryPolicy } from "../../model/snapshot.ts";
import { TRAFFIC_POLICY_DEFAULTS } from "../../model/traffic-defaults.ts";

/**
 * Sends of a request that never left the proxy to other endpoints (connect refused, TLS handshake
 * failed): no retry policy needed, none of the budget spent — also bounded by the endpoints there are.
 */
export const MAX_RESENDS = 2;

/** What happened to one attempt, in the terms retry conditions use. */
export type AttemptFailure =
  { kind: "status"; status: number } | { kind: "connect-failure" } | { kind: "reset" } | { kind: "timeout" };

/** The condition that makes `f` retriable under `p`, or undefined when it is not. */
export function retryReason(p: RetryPolicy, f: AttemptFailure): RetryCondition | "status" | undefined {
  const on = p.on;
  if (f.kind !== "status") return on.includes(f.kind) ? f.kind : undefined;
  const s = f.status;
  if (p.codes.includes(s)) return "status";
  if (s >= 500 && s <= 599 && on.includes("5xx")) return "5xx";
  if ((s === 502 || s === 503 || s === 504) && on.includes("gateway-error")) return "gateway-error";
  return undefined;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

export function methodRetriable(p: RetryPolicy, method: string): boolean {
  return p.nonIdempotent || IDEMPOTENT.has(method);
}

/** Delay before retry number `n` (1-based) with full jitter; `random` in [0, 1). */
export function backoffMs(p: RetryPolicy, n: number, random: () => number = Math.random): number {
  const ceiling = Math.min(p.backoff.maxMs, p.backoff.baseMs * 2 ** Math.min(n - 1, 30));
  return Math.floor(random() * ceiling);
}

const WINDOW_SLOTS = 10; // one per second

/** Requests and retries to one destination over a sliding window of 10 one-second slots. */
export class RetryBudget {
  readonly percent: number;
  readonly minPerSecond: number;
  readonly #now: () => number;
  readonly #requests = new Float64Array(WINDOW_SLOTS);
  readonly #retries = new Float64Array(WINDOW_SLOTS);
  #slot = -1; // absolute second of the newest slot

  constructor(percent: number, minPerSecond: number, now: () => number = () => performance.now()) {
    this.percent = percent;
    this.minPerSecond = minPerSecond;
    this.#now = now;
  }

  /** Counts a first attempt (called once per request that reaches a backend). */
  recordRequest(): void {
    this.#requests[this.#advance()]++;
  }

  /** Takes one retry from the budget if there is room; false means the retry must not be sent. */
  tryRetry(): boolean {
    const i = this.#advance();
    let requests = 0;
    let retries = 0;
    for (let k = 0; k < WINDOW_SLOTS; k++) {
      requests += this.#requests[k];
      retries += this.#retries[k];
    }
    const allowed = this.minPerSecond * WINDOW_SLOTS + (requests * this.percent) / 100;
    if (retries + 1 > allowed) return false;
    this.#retries[i]++;
    return true;
  }

  /** Moves the window to now, clearing slots that fell out of it; returns the current slot index. */
  #advance(): number {
    const second = Math.floor(this.#now() / 1000);
    if (second !== this.#slot) {
      const gap = this.#slot < 0 ? WINDOW_SLOTS : Math.min(second - this.#slot, WINDOW_SLOTS);
      for (let k = 1; k <= gap; k++) {
        const j = (((this.#slot + k) % WINDOW_SLOTS) + WINDOW_SLOTS) % WINDOW_SLOTS;
        this.#requests[j] = 0;
        this.#retries[j] = 0;
      }
      this.#slot = second;
    }
    return ((second % WINDOW_SLOTS) + WINDOW_SLOTS) % WINDOW_SLOTS;
  }
}

/** The budget a destination gets when no TrafficPolicy sets one: retries never multiply an outage. */
export const DEFAULT_RETRY_BUDGET = {
  percent: TRAFFIC_POLICY_DEFAULTS.retryBudgetPercent,
  minPerSecond: TRAFFIC_POLICY_DEFAULTS.retryBudgetMinPerSecond,
} as const;
