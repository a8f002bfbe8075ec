// When a refused caller should come back. A crowd refused at once and told "1 s" (or a guess that
// grows with the crowd) returns in a lump, is refused again, and the control plane idles between the
// lumps. Instead each refusal books a turn: the first free moment after the work already queued has
// drained, and the next refusal the moment after that, one turn per 1/rate — so N refused callers are
// told N different times spread at the pace the control plane can serve them, and come back as a
// steady stream. Turns not used pass with time (a booking is never earlier than now + the drain).
//
// Retry-After is whole seconds: callers told the same second come back within it (their own jitter
// spreads them inside it, backoff.ts). The answer is clamped to [1 s, maxMs]; past maxMs the crowd is
// told maxMs and the schedule keeps counting, so the next ones are not told less.

import type { Clock } from "../../store/store.ts";

export class ComeBackSchedule {
  readonly #clock: Pick<Clock, "now">;
  readonly #maxMs: number;
  /** The first turn not yet promised (epoch ms of the clock). */
  #nextAt = -Infinity;

  constructor(clock: Pick<Clock, "now">, maxMs: number) {
    this.#clock = clock;
    this.#maxMs = maxMs;
  }

  /**
   * Books a turn for one refused caller and says how long it should stay away (ms): not before the
   * work ahead (`drainMs`) is done, and after everyone already told to come back, at `perSecond`.
   */
  book(drainMs: number, perSecond: number): number {
    const now = this.#clock.now();
    const at = Math.max(this.#nextAt, now + drainMs);
    this.#nextAt = at + 1000 / Math.max(perSecond, 0.001);
    return Math.min(this.#maxMs, Math.max(1000, Math.ceil(at - now)));
  }

  /** How many callers are booked from now on (for diagnostics and tests). */
  booked(perSecond: number): number {
    return Math.max(0, Math.round(((this.#nextAt - this.#clock.now()) * perSecond) / 1000));
  }
}
