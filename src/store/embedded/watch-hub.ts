// Watchers and the recent history they replay from. Every committed revision's events are kept for the
// last `limit` revisions (in memory only: after a restart, history starts at the revision recovered from
// disk). A watcher remembers the next revision it needs and is always fed from this history, so catching
// up from the past and following live changes are the same loop, and revisions can never arrive out of order.

import { channel } from "node:diagnostics_channel";
import type { WatchEvent, Watcher } from "../store.ts";
import { StoreError } from "../store.ts";

/** Published when a watch listener throws: { error, prefix }. The store itself carries on. */
export const listenerErrorChannel = channel("weft:store:watch-listener-error");

interface Entry {
  revision: number;
  events: WatchEvent[];
}

interface WatchState {
  prefix: string;
  listener: (events: WatchEvent[], revision: number) => void;
  onError?: (err: StoreError) => void;
  /** Next revision this watcher has not seen yet. */
  next: number;
  active: boolean;
}

export class WatchHub {
  private readonly limit: number;
  /** Entries before `head` are dropped; the array is cut now and then rather than on every publish. */
  private history: Entry[] = [];
  private head = 0;
  /** Highest revision whose events are no longer (or never were) in history. */
  private compactedThrough: number;
  private readonly watchers = new Set<WatchState>();

  constructor(startRevision: number, limit: number) {
    this.compactedThrough = startRevision;
    this.limit = limit;
  }

  /** Records the events of a newly committed revision and delivers them. */
  publish(revision: number, events: WatchEvent[]): void {
    this.history.push({ revision, events });
    const keepFrom = revision - this.limit + 1;
    while (this.history[this.head].revision < keepFrom) {
      this.compactedThrough = this.history[this.head].revision;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.history.length) {
      this.history = this.history.slice(this.head);
      this.head = 0;
    }
    for (const w of this.watchers) this.deliver(w);
  }

  /** fromRevision: first revision to deliver. Catch-up starts on a microtask, after watch() returns. */
  watch(
    prefix: string,
    listener: WatchState["listener"],
    fromRevision: number,
    onError?: (err: StoreError) => void,
  ): Watcher {
    const w: WatchState = { prefix, listener, onError, next: fromRevision, active: true };
    this.watchers.add(w);
    queueMicrotask(() => this.deliver(w));
    return {
      cancel: () => {
        w.active = false;
        this.watchers.delete(w);
      },
    };
  }

  /** Ends every watch with err (e.g. the store closed). */
  closeAll(err: StoreError): void {
    for (const w of [...this.watchers]) this.fail(w, err);
  }

  private deliver(w: WatchState): void {
    if (!w.active) return;
    if (w.next <= this.compactedThrough) {
      const err = new StoreError(
        "compacted",
        `revision ${w.next} is no longer in the watch history (oldest kept: ${this.compactedThrough + 1})`,
      );
      this.fail(w, err);
      return;
    }
    for (let i = this.firstIndexFrom(w.next); i < this.history.length && w.active; i++) {
      const { revision, events } = this.history[i];
      w.next = revision + 1;
      const mine = w.prefix === "" ? events : events.filter((e) => e.kv.key.startsWith(w.prefix));
      if (mine.length === 0) continue;
      try {
        w.listener(mine, revision);
      } catch (error) {
        if (listenerErrorChannel.hasSubscribers) listenerErrorChannel.publish({ error, prefix: w.prefix });
      }
    }
  }

  private firstIndexFrom(revision: number): number {
    let lo = this.head;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.history[mid].revision < revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private fail(w: WatchState, err: StoreError): void {
    if (!w.active) return;
    w.active = false;
    this.watchers.delete(w);
    try {
      w.onError?.(err);
    } catch (error) {
      if (listenerErrorChannel.hasSubscribers) listenerErrorChannel.publish({ error, prefix: w.prefix });
    }
  }
}
