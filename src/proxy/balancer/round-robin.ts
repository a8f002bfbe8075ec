// Round robin over a fixed list. Each instance starts at a random offset so that many proxies
// (or a proxy that just reloaded its config) do not all send their first request to endpoint 0.

import type { Balancer } from "./balancer.ts";

export class RoundRobin<T> implements Balancer<T> {
  readonly #items: readonly T[];
  #next: number;

  constructor(items: readonly T[], start = Math.floor(Math.random() * Math.max(1, items.length))) {
    this.#items = items;
    this.#next = items.length === 0 ? 0 : start % items.length;
  }

  get size(): number {
    return this.#items.length;
  }

  pick(): T | undefined {
    const n = this.#items.length;
    if (n === 0) return undefined;
    const i = this.#next;
    this.#next = i + 1 === n ? 0 : i + 1;
    return this.#items[i];
  }
}
