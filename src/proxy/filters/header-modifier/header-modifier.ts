// HTTPRoute RequestHeaderModifier / ResponseHeaderModifier (Gateway API): `set` replaces every value
// of a header (or adds it), `add` appends one more value, `remove` drops it; names compare
// case-insensitively (../../http/header-list.ts). The request side edits the end-to-end header list
// before the upstream head is built — it can never touch Host or the framing, which the proxy sets
// itself (and which validation refuses as names). The response side is applied by the exchange to
// the upstream's response headers.

import type { HeaderModifier } from "../../../model/snapshot.ts";
import { modifyHeaders } from "../../http/header-list.ts";
import type { Exchange } from "../../pipeline/exchange.ts";
import type { Filter, Next } from "../filter.ts";

/** Anything that carries an exchange (a route's request context). */
export interface HasExchange {
  readonly x: Exchange;
}

export class RequestHeaderModifierFilter<R extends HasExchange> implements Filter<R> {
  readonly name = "request-header-modifier";
  readonly #m: HeaderModifier;
  constructor(m: HeaderModifier) {
    this.#m = m;
  }
  onRequest(r: R, next: Next<R>): void {
    modifyHeaders(r.x.headers, this.#m);
    next.run(r);
  }
}

export class ResponseHeaderModifierFilter<R extends HasExchange> implements Filter<R> {
  readonly name = "response-header-modifier";
  readonly #m: HeaderModifier;
  constructor(m: HeaderModifier) {
    this.#m = m;
  }
  onRequest(r: R, next: Next<R>): void {
    r.x.responseHeaders = this.#m;
    next.run(r);
  }
}
