// HTTPRoute RequestRedirect (Gateway API): answered by the proxy itself with the configured status
// and a Location built from the request — unset parts keep the request's own. It runs before a
// backend is picked, so a redirect rule needs no backends.

import type { PathModifier, RouteFilters } from "../../../model/snapshot.ts";
import type { Exchange } from "../../pipeline/exchange.ts";
import type { Filter, Next } from "../filter.ts";
import { rewritePath, splitTarget } from "../url-rewrite/url-rewrite.ts";

export interface RedirectSpec {
  scheme?: "http" | "https";
  hostname?: string;
  port?: number;
  path?: PathModifier;
}

/**
 * The Location of a RequestRedirect. Unset parts keep the request's own; the port is left out when
 * it is the scheme's default (and, per the Gateway API, a scheme change without a port uses the
 * new scheme's default port).
 */
export function redirectLocation(
  spec: RedirectSpec,
  req: { host: string; path: string; query: string; scheme: "http" | "https" },
  matchedPrefix: string,
): string {
  const scheme = spec.scheme ?? req.scheme;
  const [reqHost, reqPortText] = splitHostPort(req.host);
  const hostname = spec.hostname ?? reqHost;
  let port: number | undefined = spec.port;
  if (port === undefined && spec.scheme === undefined && reqPortText !== undefined)
    port = Number(reqPortText);
  const defaultPort = scheme === "https" ? 443 : 80;
  const authority = port === undefined || port === defaultPort ? hostname : `${hostname}:${port}`;
  const path = spec.path === undefined ? req.path : rewritePath(req.path, spec.path, matchedPrefix);
  return `${scheme}://${authority}${path}${req.query}`;
}

function splitHostPort(host: string): [string, string | undefined] {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    const rest = host.slice(end + 1);
    return [host.slice(0, end + 1), rest.startsWith(":") ? rest.slice(1) : undefined];
  }
  const colon = host.lastIndexOf(":");
  return colon === -1 ? [host, undefined] : [host.slice(0, colon), host.slice(colon + 1)];
}

/** What a redirect reads: the exchange and the authority the request named. */
export interface Redirectable {
  readonly x: Exchange;
  readonly host: string;
}

export class RedirectFilter<R extends Redirectable> implements Filter<R> {
  readonly name = "redirect";
  readonly #r: NonNullable<RouteFilters["redirect"]>;
  readonly #matchedPrefix: string;
  constructor(r: NonNullable<RouteFilters["redirect"]>, matchedPrefix: string) {
    this.#r = r;
    this.#matchedPrefix = matchedPrefix;
  }
  /** Always answers: nothing after a redirect runs. */
  onRequest(r: R, _next: Next<R>): void {
    const x = r.x;
    const [path, query] = splitTarget(x.target);
    const location = redirectLocation(
      this.#r,
      { host: r.host, path, query, scheme: "http" },
      this.#matchedPrefix,
    );
    x.respond(this.#r.statusCode, ["location", location]);
  }
}
