// Weighted choice among a route's backends (canary, blue-green, A/B splits). Weights are relative;
// a backend with weight 0 is never picked. Built once per config change; pick() is one random
// number and a short scan.

export class WeightedPicker<T> {
  readonly #items: T[] = [];
  readonly #cumulative: number[] = [];
  readonly total: number;

  constructor(entries: readonly { item: T; weight: number }[]) {
    let total = 0;
    for (const { item, weight } of entries) {
      if (!(weight > 0) || !Number.isFinite(weight)) continue;
      total += weight;
      this.#items.push(item);
      this.#cumulative.push(total);
    }
    this.total = total;
  }

  /** Backends that can be picked (weight > 0). */
  get items(): readonly T[] {
    return this.#items;
  }

  /** Undefined when no backend has weight > 0. `random` is in [0, 1). */
  pick(random: number = Math.random()): T | undefined {
    const n = this.#items.length;
    if (n <= 1) return this.#items[0];
    const x = random * this.total;
    const c = this.#cumulative;
    let i = 0;
    while (i < n - 1 && x >= c[i]) i++;
    return this.#items[i];
  }
}
