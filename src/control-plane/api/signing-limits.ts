// Certificate signing's limits: how many signatures run at once, how many may start per second (a
// token bucket with a burst), and how many requests may wait, in all and per identity. A signature
// (CSR check included) costs ~0.45 ms of CPU here since the CA signs with node:crypto
// (pki/workload-cert.ts): one core signs ~2000 per second. The default, 500 per second (burst 100),
// keeps signing under about a quarter of a core, and is far from what bounds a start storm (2000
// proxies' certificates in a few seconds: the TLS handshakes and API calls around them cost more).
// `weft control-plane --sign-rate/--sign-burst` change the rate. docs/security.md describes them.

import { availableParallelism } from "node:os";
import type { Clock } from "../../store/store.ts";
import { Admission, Overloaded } from "./admission.ts";
import { ApiError } from "./http.ts";
import { TokenBucket } from "./token-bucket.ts";

export interface SigningLimits {
  /** Signatures started per second, sustained. */
  ratePerSecond: number;
  /** Signatures that may start at once after a quiet spell. */
  burst: number;
  /** Signatures running at the same time (default: twice the cores, at least 2). */
  concurrency: number;
  /** Requests waiting for a turn, in all; more are refused with 503 + Retry-After. */
  maxQueued: number;
  /** ... and per identity (namespace/service), so one identity cannot fill the queue. */
  maxQueuedPerIdentity: number;
  /** Longest wait in the queue (ms): under a proxy's 10 s call timeout, so a waiter is always answered. */
  maxWaitMs: number;
}

export const DEFAULT_SIGNING_LIMITS: SigningLimits = {
  ratePerSecond: 500,
  burst: 100,
  concurrency: Math.max(2, availableParallelism() * 2),
  maxQueued: 1000,
  maxQueuedPerIdentity: 128,
  maxWaitMs: 5_000,
};

export function signingAdmission(limits: Partial<SigningLimits> | undefined, clock: Clock): Admission {
  const set = Object.entries(limits ?? {}).filter(([, v]) => v !== undefined);
  const l: SigningLimits = { ...DEFAULT_SIGNING_LIMITS, ...Object.fromEntries(set) };
  return new Admission({
    name: "certificate signing",
    concurrency: l.concurrency,
    maxQueued: l.maxQueued,
    maxQueuedPerKey: l.maxQueuedPerIdentity,
    maxWaitMs: l.maxWaitMs,
    clock,
    bucket: new TokenBucket(l.ratePerSecond, l.burst, clock),
  });
}

/** An admission refusal as the API answers it: 503, code `overloaded`, Retry-After in whole seconds. */
export function overloadedError(err: unknown): unknown {
  if (!(err instanceof Overloaded)) return err;
  return new ApiError(503, "overloaded", err.message, {
    reason: err.reason,
    retryAfterSeconds: Math.max(1, Math.ceil(err.retryAfterMs / 1000)),
  });
}
