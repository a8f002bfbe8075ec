// The inbound local rate limit: token buckets refilled lazily from a clock (no timers), one for the
// whole instance or one per calling identity. A bucket holds at most `burst` tokens and gains
// `requestsPerSecond` per second; a request takes one token or is refused with the time until the
// next token. Nothing here is per request beyond a little arithmetic (and one Map lookup per source).
//
// Per-source buckets are kept in a bounded map. A bucket that has been idle long enough to be full
// again is indistinguishable from a new one, so evicting it changes no decision; idle buckets are
// swept at most once per refill period. If the map is still at its cap after a sweep (more distinct
// callers active at once than the cap), newcomers share one overflow bucket: memory stays bounded,
// and a flood of identities is limited as a group rather than each getting a fresh allowance.

import type { RateLimit } from "../../../model/snapshot.ts";

/** Milliseconds from a monotonic origin. */
export type Clock = () => number;

export const monotonicClock: Clock = () => performance.now();

/** Default cap on per-source buckets. */
export const MAX_SOURCE_BUCKETS = 10_000;

class Bucket {
  tokens: number;
  last: number;
  constructor(tokens: number, now: number) {
    this.tokens = tokens;
    this.last = now;
  }
}

export class RateLimiter {
  readonly settings: RateLimit;
  readonly #capacity: number;
  /** Tokens per millisecond. */
  readonly #rate: number;
  /** How long an empty bucket takes to fill up (ms): after that long idle, a bucket is as good as new. */
  readonly #fullAfterMs: number;
  readonly #clock: Clock;
  readonly #maxBuckets: number;
  /** The one bucket (per instance), or the overflow bucket shared by sources past the cap. */
  readonly #shared: Bucket;
  readonly #bySource: Map<string, Bucket> | undefined;
  #nextSweep = 0;

  constructor(settings: RateLimit, clock: Clock = monotonicClock, maxBuckets = MAX_SOURCE_BUCKETS) {
    this.settings = settings;
    // Defensive: the compiler guarantees rps > 0 and burst >= 1, but a zero would divide or lock out.
    this.#capacity = Math.max(1, settings.burst);
    this.#rate = Math.max(settings.requestsPerSecond, 1e-6) / 1000;
    this.#fullAfterMs = this.#capacity / this.#rate;
    this.#clock = clock;
    this.#maxBuckets = maxBuckets;
    this.#shared = new Bucket(this.#capacity, clock());
    this.#bySource = settings.perSource ? new Map() : undefined;
  }

  /** True when `other` would make the same decisions, so the running buckets can be kept. */
  sameSettings(other: RateLimit): boolean {
    const s = this.settings;
    return (
      s.requestsPerSecond === other.requestsPerSecond &&
      s.burst === other.burst &&
      s.perSource === other.perSource
    );
  }

  /** Number of per-source buckets held (for tests and introspection). */
  get buckets(): number {
    return this.#bySource?.size ?? 0;
  }

  /**
   * Takes a token for a request from `source` (its identity; ignored unless perSource). Returns 0 when
   * the request may pass, otherwise the milliseconds until a token will be available.
   */
  take(source: string): number {
    const now = this.#clock();
    const b = this.#bySource === undefined ? this.#shared : this.#bucketOf(source, now);
    const tokens = Math.min(this.#capacity, b.tokens + (now - b.last) * this.#rate);
    b.last = now;
    if (tokens >= 1) {
      b.tokens = tokens - 1;
      return 0;
    }
    b.tokens = tokens;
    return Math.max(1, Math.ceil((1 - tokens) / this.#rate));
  }

  #bucketOf(source: string, now: number): Bucket {
    const map = this.#bySource as Map<string, Bucket>;
    const b = map.get(source);
    if (b !== undefined) return b;
    if (now >= this.#nextSweep) this.#sweep(now);
    if (map.size >= this.#maxBuckets) return this.#shared;
    const fresh = new Bucket(this.#capacity, now);
    map.set(source, fresh);
    return fresh;
  }

  /** Drops buckets that are full again (idle for a whole refill period). O(n), at most once a period. */
  #sweep(now: number): void {
    const map = this.#bySource as Map<string, Bucket>;
    for (const [k, b] of map) if (now - b.last >= this.#fullAfterMs) map.delete(k);
    this.#nextSweep = now + Math.max(1000, this.#fullAfterMs);
  }
}
