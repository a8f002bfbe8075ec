// Whether a registered proxy is alive, proven by the proxy rather than assumed from an open TCP
// connection: every period the control plane sends an HTTP/2 PING on the proxy's connection, and only
// an answer refreshes the registration's lease. A frozen (SIGSTOP), wedged or partitioned proxy stops
// answering, its lease is no longer refreshed, and its Workload is deleted when the lease runs out —
// at most one lease TTL (the grace period) after the last answered ping, i.e. after it stopped. A ping
// still unanswered after `timeoutMs` ends the stream, so a dead peer does not hold resources either.
//
// At most one ping is outstanding; the timer runs on the injected clock. The verdict counts only time
// the control plane could have heard the answer: when its own loop stalls (a long compile, a big
// apply, a reconnect storm — measured by loop-lag.ts, or by how late this tick ran), answers may sit
// unread behind the stall, so the stall is subtracted from the wait, and the lease is extended by it
// (onAlive) rather than left to run out while the proxy cannot be heard. Any message the proxy sends
// on its stream (an ACK, a health report) is as good as an answered ping: the wait starts over. The
// tick is due before the lease's own expiry timer, so it runs first.

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
  /** The control plane's own loop stalls (loop-lag.ts); without it, this timer's lateness is used. */
  lag?: { stalledMs(): number };
}

export class Liveness {
  readonly #opts: LivenessOptions;
  #timer: unknown;
  #dueAt = 0;
  /** When the unanswered ping was sent; undefined when none is outstanding. */
  #waitingSince: number | undefined;
  #stopped = false;
  #lastAlive = -Infinity;
  /** Stall totals when the lease was last refreshed, and when the outstanding ping was sent. */
  #stalledAtAlive = 0;
  #stalledAtSend = 0;
  #ownStall = 0;

  constructor(opts: LivenessOptions) {
    this.#opts = opts;
    this.#stalledAtAlive = this.#stalled();
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

  /** The proxy was heard from on its stream: alive, and the wait for an outstanding ping starts over. */
  heard(): void {
    if (this.#stopped) return;
    const now = this.#opts.clock.now();
    if (this.#waitingSince !== undefined) this.#waitingSince = now;
    // At most one lease refresh per quarter period, however chatty the proxy.
    if (now - this.#lastAlive < this.#opts.periodMs / 4) return;
    this.#alive(now);
  }

  #alive(now: number): void {
    this.#lastAlive = now;
    this.#stalledAtAlive = this.#stalled();
    this.#opts.onAlive();
  }

  #stalled(): number {
    return this.#opts.lag?.stalledMs() ?? this.#ownStall;
  }

  #tick(): void {
    if (this.#stopped) return;
    const now = this.#opts.clock.now();
    // Without a lag monitor: a tick more than a period late is a stall of the control plane.
    const late = now - this.#dueAt;
    if (late > this.#opts.periodMs) this.#ownStall += late;
    const stalled = this.#stalled();
    // Extend the lease by a stall long enough to matter, so it does not run out while unheard.
    if (stalled - this.#stalledAtAlive >= this.#opts.periodMs / 2) this.#alive(now);
    if (this.#waitingSince === undefined) {
      this.#send(now);
    } else {
      const waited = now - this.#waitingSince - (stalled - this.#stalledAtSend);
      if (waited >= this.#opts.timeoutMs) {
        this.stop();
        this.#opts.onDead(`no answer to a ping for ${waited} ms`);
        return;
      }
    }
    this.#schedule();
  }

  #send(now: number): void {
    // If the ping cannot be sent (connection closing, too many outstanding) the wait still counts.
    this.#waitingSince = now;
    this.#stalledAtSend = this.#stalled();
    try {
      this.#opts.ping((err) => {
        if (this.#stopped) return;
        this.#waitingSince = undefined;
        if (err === null) this.#alive(this.#opts.clock.now());
      });
    } catch {
      // The connection is already gone: no answer will come, and the stream's close stops us.
    }
  }
}
