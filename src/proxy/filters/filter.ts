// The filter contract: a filter looks at a request and either calls `next.run(r)` to pass it on
// (at once, or later: a fault delay) or answers it with a local reply (`x.reply(...)`, or a redirect
// with `x.respond(...)`). Two outcomes, no status enum. A filter is built once from its config (each
// folder's factory) and shared by every request of its route or listener: per-request state lives
// on the request record, never on the filter.
//
// Composition happens at config time, never per request: `compose(filters, terminal)` links the
// filters from the LAST to the first (the terminal is wrapped first), so a request runs through
// them FIRST TO LAST in the order of the list, then reaches the terminal (the forward). An empty
// list returns the terminal itself — the fast path costs one call. Running a chain allocates
// nothing: each link is an object made at compose time.

/** The rest of a chain, from a filter's point of view. */
export interface Next<R> {
  run(r: R): void;
}

export interface Filter<R> {
  /** For docs and /config: the folder's name ("fault", "header-modifier", ...). */
  readonly name: string;
  onRequest(r: R, next: Next<R>): void;
}

class Link<R> implements Next<R> {
  readonly #filter: Filter<R>;
  readonly #next: Next<R>;
  constructor(filter: Filter<R>, next: Next<R>) {
    this.#filter = filter;
    this.#next = next;
  }
  run(r: R): void {
    this.#filter.onRequest(r, this.#next);
  }
}

/** Links `filters` in front of `terminal`; requests run them in list order. */
export function compose<R>(filters: readonly Filter<R>[], terminal: Next<R>): Next<R> {
  let next = terminal;
  for (let i = filters.length - 1; i >= 0; i--) next = new Link(filters[i], next);
  return next;
}
