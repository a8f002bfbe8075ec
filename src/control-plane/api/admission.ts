// Admission for the control plane's expensive work (certificate signing, a new proxy's registration and
// first snapshot): at most `concurrency` units run at once, at most `rate` start per second (a token
// bucket, optional), and the rest wait in a bounded queue. A reconnect storm is thus paced instead of
// taking the event loop down with it:
//
//   - Fair: waiters queue per key (a workload's identity, namespace/service) and are served round-robin
//     across keys, so one noisy identity — however many requests it sends — gets one turn in each
//     round, and cannot starve the others. A key may hold at most `maxQueuedPerKey` waiters.
//   - Bounded: at most `maxQueued` wait in all, and no more than the recent pace can serve within
//     `maxWaitMs`; beyond that, and beyond a key's share, a request is refused at once with an
//     `Overloaded` carrying when to come back: a turn of its own after the queue has drained and
//     after every caller refused before it, one turn per 1/pace (come-back.ts), so a refused crowd
//     returns as a steady stream at the rate it can be served instead of in lumps that leave the
//     control plane idle in between. The API writes it as 503 + Retry-After and the stream server
//     likewise. A waiter still queued after `maxWaitMs` is refused the same way, so nobody waits
//     unanswered.
//   - A waiter whose caller went away (its AbortSignal) leaves the queue and costs nothing more.
//
// Time comes from the injected clock; the drain-time estimate uses the rate if there is one, else
// the recent service time.

import type { Clock } from "../../store/store.ts";
import { ComeBackSchedule } from "./come-back.ts";
import type { TokenBucket } from "./token-bucket.ts";

export interface AdmissionOptions {
  /** What this admits, for messages ("certificate signing"). */
  name: string;
  concurrency: number;
  maxQueued: number;
  maxQueuedPerKey: number;
  /** Longest time a waiter stays queued before it is refused (ms). */
  maxWaitMs: number;
  clock: Clock;
  /** Optional rate limit: each start takes a token. */
  bucket?: TokenBucket;
  /** Largest Retry-After given to a refused caller (ms); default 30 s. */
  maxRetryAfterMs?: number;
}

export const DEFAULT_MAX_RETRY_AFTER_MS = 30_000;
/** The window over which the pace of finished work is measured (ms, an exponential decay's constant). */
const RATE_WINDOW_MS = 5_000;

/** Refused for load: try again after `retryAfterMs`. */
export class Overloaded extends Error {
  readonly retryAfterMs: number;
  readonly reason: "queue_full" | "key_queue_full" | "queue_timeout";
  constructor(message: string, reason: Overloaded["reason"], retryAfterMs: number) {
    super(message);
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }
}

interface Waiter {
  key: string;
  start: () => void;
  refuse: (err: Overloaded) => void;
  since: number;
  timer: unknown;
  cleanup: () => void;
}

export interface AdmissionStats {
  running: number;
  queued: number;
  admitted: number;
  refused: Record<Overloaded["reason"], number>;
}

export class Admission {
  readonly #opts: AdmissionOptions;
  /** Waiters per key, in arrival order; the map's order is the round-robin ring. */
  readonly #queues = new Map<string, Waiter[]>();
  #queued = 0;
  #running = 0;
  #admitted = 0;
  #refused = { queue_full: 0, key_queue_full: 0, queue_timeout: 0 };
  /** Moving average of how long one unit of work takes (ms), for the drain estimate. */
  #serviceMs = 50;
  #bucketTimer: unknown;
  readonly #comeBack: ComeBackSchedule;
  /** Units finished lately, decaying with RATE_WINDOW_MS as time constant, and when last counted. */
  #finished = 0;
  #finishedAt = 0;

  constructor(opts: AdmissionOptions) {
    this.#opts = opts;
    this.#comeBack = new ComeBackSchedule(opts.clock, opts.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS);
  }

  get stats(): AdmissionStats {
    return {
      running: this.#running,
      queued: this.#queued,
      admitted: this.#admitted,
      refused: { ...this.#refused },
    };
  }

  /** Runs `work` once admitted; rejects with Overloaded if it cannot be (or with `signal`'s reason). */
  async run<T>(key: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.#admit(key, signal);
    const started = this.#opts.clock.now();
    try {
      return await work();
    } finally {
      const now = this.#opts.clock.now();
      this.#serviceMs = this.#serviceMs * 0.9 + (now - started) * 0.1;
      this.#finished = this.#finishedRecently(now) + 1;
      this.#finishedAt = now;
      this.#running--;
      this.#pump();
    }
  }

  /**
   * Books a turn for a caller refused now and says how long it should stay away (ms, 1 s to
   * `maxRetryAfterMs`): after the queue ahead has drained and after every caller refused before it,
   * at the recent pace. Callers refused elsewhere for the same work (the API's body reader when it is
   * busy) book theirs here too, so they are counted in the schedule.
   */
  retryAfterMs(): number {
    return this.#comeBack.book(this.#expectedWaitMs(this.#queued + this.#running), this.#perSecond());
  }

  /**
   * Units of work per second at the recent pace, capped by the rate: the better of slots ÷ service
   * time and the units actually finished lately. Under a storm the first alone misleads: a few turns
   * that run into their hold limit inflate the service time while the rest finish quickly, and the
   * refused would be told to stay away far longer than the work ahead takes.
   */
  #perSecond(): number {
    const bySlots = (this.#opts.concurrency * 1000) / Math.max(1, this.#serviceMs);
    const finished = (this.#finishedRecently(this.#opts.clock.now()) * 1000) / RATE_WINDOW_MS;
    const pace = Math.max(bySlots, finished);
    return this.#opts.bucket ? Math.min(this.#opts.bucket.ratePerSecond, pace) : pace;
  }

  #finishedRecently(now: number): number {
    return this.#finished * Math.exp(-(now - this.#finishedAt) / RATE_WINDOW_MS);
  }

  /** How long `ahead` units of work take at the recent pace. */
  #expectedWaitMs(ahead: number): number {
    return Math.ceil((ahead / this.#perSecond()) * 1000);
  }

  #admit(key: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#queued === 0 && this.#canStart()) {
      this.#start();
      return Promise.resolve();
    }
    const { name, maxQueued, maxQueuedPerKey } = this.#opts;
    if (this.#queued >= maxQueued)
      return Promise.reject(this.#refuse("queue_full", `${name}: ${maxQueued} requests already waiting`));
    // A newcomer that could not be reached within the wait limit at the pace the work is going is
    // told so now, cheaply, rather than held until it times out.
    if (this.#expectedWaitMs(this.#queued + 1) > this.#opts.maxWaitMs)
      return Promise.reject(
        this.#refuse("queue_full", `${name}: the queue would take over ${this.#opts.maxWaitMs} ms`),
      );
    const queue = this.#queues.get(key) ?? [];
    if (queue.length >= maxQueuedPerKey)
      return Promise.reject(
        this.#refuse("key_queue_full", `${name}: ${maxQueuedPerKey} requests of ${key} already waiting`),
      );
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#remove(waiter);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        key,
        since: this.#opts.clock.now(),
        start: () => {
          waiter.cleanup();
          resolve();
        },
        refuse: (err) => {
          waiter.cleanup();
          reject(err);
        },
        timer: undefined,
        cleanup: () => {
          this.#opts.clock.clearTimeout(waiter.timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      waiter.timer = this.#opts.clock.setTimeout(() => {
        this.#remove(waiter);
        waiter.refuse(
          this.#refuse("queue_timeout", `${name}: not admitted within ${this.#opts.maxWaitMs} ms`),
        );
      }, this.#opts.maxWaitMs);
      (waiter.timer as { unref?: () => void } | undefined)?.unref?.();
      signal?.addEventListener("abort", onAbort, { once: true });
      queue.push(waiter);
      this.#queues.set(key, queue);
      this.#queued++;
      this.#pump();
    });
  }

  #refuse(reason: Overloaded["reason"], message: string): Overloaded {
    this.#refused[reason]++;
    return new Overloaded(
      `${message}; the control plane is busy, try again later`,
      reason,
      this.retryAfterMs(),
    );
  }

  #canStart(): boolean {
    if (this.#running >= this.#opts.concurrency) return false;
    return this.#opts.bucket ? this.#opts.bucket.take() : true;
  }

  #start(): void {
    this.#running++;
    this.#admitted++;
  }

  /** Starts waiters, one key at a time round-robin, while there is room and a token. */
  #pump(): void {
    while (this.#queued > 0 && this.#running < this.#opts.concurrency) {
      if (this.#opts.bucket && !this.#opts.bucket.take()) return this.#wakeForToken();
      // The first key in the ring takes its turn, then goes to the back.
      const [key, queue] = this.#queues.entries().next().value as [string, Waiter[]];
      const waiter = queue.shift()!;
      this.#queues.delete(key);
      if (queue.length > 0) this.#queues.set(key, queue);
      this.#queued--;
      this.#start();
      waiter.start();
    }
  }

  #wakeForToken(): void {
    if (this.#bucketTimer !== undefined) return;
    const handle = this.#opts.clock.setTimeout(() => {
      this.#bucketTimer = undefined;
      this.#pump();
    }, this.#opts.bucket!.waitMs());
    (handle as { unref?: () => void } | undefined)?.unref?.();
    this.#bucketTimer = handle;
  }

  #remove(waiter: Waiter): void {
    const queue = this.#queues.get(waiter.key);
    const i = queue?.indexOf(waiter) ?? -1;
    if (!queue || i < 0) return;
    queue.splice(i, 1);
    if (queue.length === 0) this.#queues.delete(waiter.key);
    this.#queued--;
  }
}
