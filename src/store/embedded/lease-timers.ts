// When leases expire. Deadlines live only in memory: a keep-alive is not written to disk, and after a
// restart every persisted lease starts over with its full TTL (as etcd does). Time comes from the injected
// Clock, so tests move it by hand.

import type { Clock } from "../store.ts";

const MAX_TIMER_MS = 2 ** 31 - 1;

interface Entry {
  ttl: number;
  deadline: number;
  timer: unknown;
}

export class LeaseTimers {
  private readonly clock: Clock;
  private readonly onExpire: (id: number) => void;
  private readonly entries = new Map<number, Entry>();

  constructor(clock: Clock, onExpire: (id: number) => void) {
    this.clock = clock;
    this.onExpire = onExpire;
  }

  /** Starts (or restarts) the full TTL of a lease. */
  start(id: number, ttlSeconds: number): void {
    this.stop(id);
    const entry: Entry = {
      ttl: ttlSeconds,
      deadline: this.clock.now() + ttlSeconds * 1000,
      timer: undefined,
    };
    this.entries.set(id, entry);
    this.arm(id, entry);
  }

  /** Restarts the TTL of a live lease; undefined if the lease is unknown or already expired. */
  refresh(id: number): number | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.start(id, entry.ttl);
    return entry.ttl;
  }

  stop(id: number): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.clock.clearTimeout(entry.timer);
    this.entries.delete(id);
  }

  stopAll(): void {
    for (const id of [...this.entries.keys()]) this.stop(id);
  }

  private arm(id: number, entry: Entry): void {
    // Timers cannot wait longer than 2^31-1 ms; a longer TTL simply re-arms when that one fires.
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, entry.deadline - this.clock.now()));
    const handle = this.clock.setTimeout(() => this.fire(id, entry), delay);
    (handle as { unref?: () => void } | undefined)?.unref?.();
    entry.timer = handle;
  }

  private fire(id: number, entry: Entry): void {
    if (this.entries.get(id) !== entry) return; // refreshed or stopped since this timer was set
    if (this.clock.now() < entry.deadline) {
      this.arm(id, entry); // not due yet: a capped delay, or a clock that fired early
      return;
    }
    this.entries.delete(id);
    this.onExpire(id);
  }
}
