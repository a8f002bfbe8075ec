// HTTPRoute URLRewrite (Gateway API): the Host sent upstream, and the path — whole (ReplaceFullPath)
// or only the part the route's PathPrefix matched (ReplacePrefixMatch); the query string is kept.
// Route matching already happened, on the path as received.

import type { PathModifier, RouteFilters } from "../../../model/snapshot.ts";
import type { Exchange } from "../../pipeline/exchange.ts";
import type { Filter, Next } from "../filter.ts";

/**
 * The path after a path modifier. `matchedPrefix` is the route's PathPrefix value (ReplacePrefixMatch
 * replaces it, keeping what follows on a segment boundary: prefix /api → /v2 turns /api/x into /v2/x).
 */
export function rewritePath(path: string, m: PathModifier, matchedPrefix: string): string {
  if (m.type === "ReplaceFullPath") return m.value;
  const prefix = matchedPrefix.replace(/\/+$/, "");
  const rest = path.slice(prefix.length); // "" or "/..." (the matcher guarantees a segment boundary)
  const base = m.value.replace(/\/+$/, "");
  if (rest === "" || rest === "/") return base === "" ? "/" : base + (rest === "/" ? "/" : "");
  return base + rest;
}

/** Splits an origin-form target into path and the query suffix ("?..." or ""). */
export function splitTarget(target: string): [string, string] {
  const q = target.indexOf("?");
  return q === -1 ? [target, ""] : [target.slice(0, q), target.slice(q)];
}

/** What the rewrite changes: the exchange's target and the Host sent upstream. */
export interface Rewritable {
  readonly x: Exchange;
  host: string;
}

export class UrlRewriteFilter<R extends Rewritable> implements Filter<R> {
  readonly name = "url-rewrite";
  readonly #rw: NonNullable<RouteFilters["rewrite"]>;
  readonly #matchedPrefix: string;
  constructor(rw: NonNullable<RouteFilters["rewrite"]>, matchedPrefix: string) {
    this.#rw = rw;
    this.#matchedPrefix = matchedPrefix;
  }
  onRequest(r: R, next: Next<R>): void {
    const rw = this.#rw;
    if (rw.hostname !== undefined) r.host = rw.hostname;
    if (rw.path !== undefined) {
      const x = r.x;
      const [path, query] = splitTarget(x.target);
      x.target = rewritePath(path, rw.path, this.#matchedPrefix) + query;
    }
    next.run(r);
  }
}
