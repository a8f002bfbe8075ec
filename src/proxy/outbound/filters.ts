// HTTPRoute filters that change the request or the response (Gateway API semantics):
//   RequestHeaderModifier / ResponseHeaderModifier: `set` replaces every value of a header (or adds
//   it), `add` appends one more value, `remove` drops it; names compare case-insensitively.
//   URLRewrite: the Host sent upstream, and the path — whole (ReplaceFullPath) or only the part the
//   route's PathPrefix matched (ReplacePrefixMatch); the query string is kept.
//   RequestRedirect: the Location for a redirect answered by the proxy itself.
// Header lists are the flat [name, value, name, value, ...] arrays the proxy forwards, edited in place.

import type { PathModifier } from "../../model/snapshot.ts";

export { modifyHeaders } from "../http/header-list.ts";

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
