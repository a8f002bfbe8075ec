// How long the control plane's own event loop has been stalled, so that timeouts judging *others*
// (a proxy's ping answer, a client's request headers) do not count time the control plane itself
// could not look. A sampler ticks every `intervalMs` on the injected clock; a tick that runs more
// than `toleranceMs` late adds its lateness to the total. A stall still in progress — the loop is
// running the caller, and the sampler's tick is overdue — is counted too, so a timeout checked in the
// first timer after a long block already sees that block.
//
// Consumers keep `stalledMs()` at the start of a wait and subtract: time waited minus time stalled is
// the time the other side really had. (perf_hooks.monitorEventLoopDelay measures the same lateness of
// a timer, but on the real clock only; this one runs on the clock the tests move.)

import { systemClock, type Clock } from "../store/store.ts";

export interface LoopLagOptions {
  clock?: Clock;
  intervalMs?: number;
  toleranceMs?: number;
}

export class LoopLag {
  readonly #clock: Clock;
  readonly #interval: number;
  readonly #tolerance: number;
  #stalled = 0;
  #dueAt = 0;
  #timer: unknown;
  #running = false;

  constructor(opts: LoopLagOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#interval = opts.intervalMs ?? 100;
    this.#tolerance = opts.toleranceMs ?? 20;
  }

  start(): this {
    if (this.#running) return this;
    this.#running = true;
    this.#arm();
    return this;
  }

  stop(): void {
    this.#running = false;
    this.#clock.clearTimeout(this.#timer);
  }

  /** Total time the loop was stalled since start, including a stall in progress (ms). */
  stalledMs(): number {
    if (!this.#running) return this.#stalled;
    const late = this.#clock.now() - this.#dueAt;
    return this.#stalled + (late > this.#tolerance ? late : 0);
  }

  #arm(): void {
    this.#dueAt = this.#clock.now() + this.#interval;
    const handle = this.#clock.setTimeout(() => this.#tick(), this.#interval);
    (handle as { unref?: () => void } | undefined)?.unref?.();
    this.#timer = handle;
  }

  #tick(): void {
    if (!this.#running) return;
    const late = this.#clock.now() - this.#dueAt;
    if (late > this.#tolerance) this.#stalled += late;
    this.#arm();
  }
}
