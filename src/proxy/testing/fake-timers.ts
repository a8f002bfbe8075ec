// Timers for tests of code that schedules with the `Timers` interface (agent/health-check.ts): time
// moves only when the test calls `advance`, and callbacks run in order of their due time.

import type { Timers } from "../agent/health-check.ts";

/** Timers driven by `advance`: callbacks run when their time comes, then pending promises settle. */
export class FakeTimers implements Timers {
  now = 0;
  readonly #due = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#due.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#due.delete(handle as number);
  }
  get pending(): number {
    return this.#due.size;
  }
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#due) if (e[1].at <= end && (!first || e[1].at < first[1].at)) first = e;
      if (!first) break;
      this.#due.delete(first[0]);
      this.now = first[1].at;
      first[1].fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}

/** Lets resolved probe promises run their continuations. */
export const settle = () => new Promise<void>((r) => setImmediate(r));
