// How a proxy waits before it calls the control plane again. Thousands of proxies that lost the same
// control plane at the same moment must not come back in step: each wait is drawn uniformly from
// [0, min(cap, base·2^attempt)] ("full jitter"), so retries spread over the whole window instead of
// bunching at its edges. A control plane that says how long to stay away (503 + Retry-After, or the
// same on the config stream) is obeyed, with a jitter of at most one second on top: the control
// plane already spread its refused crowd by giving each caller a turn of its own (whole seconds), so
// the jitter only spreads those told the same second within it — an exponential window on top would
// leave the control plane idle while the crowd sits out waits nobody asked for.
//
// What is worth retrying is decided here too, once: an overloaded or unreachable control plane
// (5xx, 429, 408, a reset or timed-out connection) is; a refusal (401, 403, 422, ...) is not.

import { ApiCallError } from "../../client/api-client.ts";

export interface BackoffPolicy {
  /** The first window (ms). */
  baseMs: number;
  /** The largest window (ms). */
  capMs: number;
}

/** Retry-After is honoured up to this (a hostile or confused server cannot park a proxy for a day). */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;
/** The widest jitter added to a wait the server asked for (Retry-After has whole-second resolution). */
export const RETRY_AFTER_JITTER_MS = 1000;

/** The jittered wait before retry number `attempt` (0 = the first retry). */
export function fullJitter(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const window = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * window);
}

/** The wait before the next attempt: what the server asked for (if anything), plus full jitter. */
export function retryDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  if (retryAfterMs === undefined || !(retryAfterMs > 0)) return fullJitter(attempt, policy, random);
  const jitter = { baseMs: Math.min(policy.baseMs, RETRY_AFTER_JITTER_MS), capMs: RETRY_AFTER_JITTER_MS };
  return Math.min(retryAfterMs, MAX_RETRY_AFTER_MS) + fullJitter(attempt, jitter, random);
}

/** Parses a Retry-After value (seconds, or an HTTP date) into ms from `now`; undefined if absent or bad. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Whether a failed control-plane call is worth trying again (the server was busy or unreachable). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ApiCallError) return err.status >= 500 || err.status === 429 || err.status === 408;
  // Network-level failures: reset, refused (restarting), timed out, TLS cut short.
  return err instanceof Error;
}

export interface RetryOptions {
  policy: BackoffPolicy;
  /** Give up (rethrow the last error) once this much time has passed since the first attempt (ms). */
  deadlineMs: number;
  /** Each failure that will be retried, with the wait chosen. */
  onRetry?: (err: Error, delayMs: number, attempt: number) => void;
  /** Stop retrying (e.g. the proxy is stopping). */
  signal?: AbortSignal;
  random?: () => number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Calls `fn` until it succeeds, a failure is not retryable, the deadline passes or `signal` aborts. */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? abortableSleep;
  const started = now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryable(err) || opts.signal?.aborted) throw err;
      const retryAfter = err instanceof ApiCallError ? err.retryAfterMs : undefined;
      const delay = retryDelayMs(attempt, opts.policy, retryAfter, opts.random);
      if (now() + delay - started > opts.deadlineMs) throw err;
      opts.onRetry?.(err as Error, delay, attempt);
      await sleep(delay, opts.signal);
      if (opts.signal?.aborted) throw err;
    }
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
