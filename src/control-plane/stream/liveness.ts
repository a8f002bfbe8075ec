// Whether a registered proxy is alive, proven by the proxy rather than assumed from an open TCP
// connection: every period the control plane sends an HTTP/2 PING on the proxy's connection, and only
// an answer refreshes the registration's lease. A frozen (SIGSTOP), wedged or partitioned proxy stops
// answering, its lease is no longer refreshed, and its Workload is deleted when the lease runs out —
// at most one lease TTL (the grace period) after the last answered ping, i.e. after it stopped. A ping
// still unanswered after `timeoutMs` ends the stream, so a dead peer does not hold resources either.
//
// At most one ping is outstanding; the timer runs on the injected clock. A tick that runs much later
// than it was due means the control plane itself stalled (a long compile, a big apply): answers may be
// queued behind the stall, so it is not held against the proxy — the lease is extended and the wait
// starts over. The tick is due before the lease's own expiry timer, so it runs first.

import type { Clock } from "../../store/store.ts";

export interface LivenessOptions {
  /** Sends a PING; the callback runs with null on the peer's answer. False when it could not be sent. */
  ping: (done: (err: Error | null) => void) => boolean;
  clock: Clock;
  periodMs: number;
  timeoutMs: number;
  /** The peer answered a ping. */
  onAlive: () => void;
  /** No answer within timeoutMs. Called once; the checks stop. */
  onDead: (why: string) => void;
}

export class Liveness {
  readonly #opts: LivenessOptions;
  #timer: unknown;
  #dueAt = 0;
  /** When the unanswered ping was sent; undefined when none is outstanding. */
  #waitingSince: number | undefined;
  #stopped = false;

  constructor(opts: LivenessOptions) {
    this.#opts = opts;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#opts.clock.clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#dueAt = this.#opts.clock.now() + this.#opts.periodMs;
    const handle = this.#opts.clock.setTimeout(() => this.#tick(), this.#opts.periodMs);
    (handle as { unref?: () => void } | undefined)?.unref?.();
    this.#timer = handle;
  }

  #tick(): void {
    if (this.#stopped) return;
    const now = this.#opts.clock.now();
    if (now - this.#dueAt > this.#opts.periodMs) {
      this.#opts.onAlive();
      if (this.#waitingSince !== undefined) this.#waitingSince = now;
    }
    if (this.#waitingSince === undefined) {
      this.#send(now);
    } else if (now - this.#waitingSince >= this.#opts.timeoutMs) {
      this.stop();
      this.#opts.onDead(`no answer to a ping for ${now - this.#waitingSince} ms`);
      return;
    }
    this.#schedule();
  }

  #send(now: number): void {
    // If the ping cannot be sent (connection closing, too many outstanding) the wait still counts.
    this.#waitingSince = now;
    try {
      this.#opts.ping((err) => {
        if (this.#stopped) return;
        this.#waitingSince = undefined;
        if (err === null) this.#opts.onAlive();
      });
    } catch {
      // The connection is already gone: no answer will come, and the stream's close stops us.
    }
  }
}
