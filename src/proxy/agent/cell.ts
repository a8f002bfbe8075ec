// A value that changes over time, with subscribers: the proxy's certificate and its config snapshot.

import type { Source } from "../types.ts";

export class Cell<T> implements Source<T> {
  #value: T | undefined;
  readonly #subs = new Set<(value: T) => void>();

  current(): T | undefined {
    return this.#value;
  }

  set(value: T): void {
    this.#value = value;
    for (const fn of this.#subs) fn(value);
  }

  subscribe(fn: (value: T) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }
}
