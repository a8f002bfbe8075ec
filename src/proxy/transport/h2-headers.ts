// Protocol conversion between HTTP/1.1 heads and HTTP/2 header blocks (RFC 9113 §8.2, §8.3), pure
// and allocation-light. Requests: HTTP/1.1 name/value lists become h2 header objects — Host becomes
// :authority, connection-specific headers are dropped (h2 forbids them: Connection, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade, HTTP2-Settings, and TE except "trailers"), names are
// lowercased, repeated names keep their order as arrays. Responses and trailers: h2 header lists
// become HTTP/1.1 lists without pseudo-headers. Used by the h2 client (h2-stream.ts) and the h2
// server edge in both directions.

import type { OutgoingHttpHeaders } from "node:http2";

/** Header names that are connection-specific in HTTP/1.1 and must not appear in HTTP/2. */
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

export interface H2RequestTarget {
  method: string;
  /** Origin-form "/path?query" (or "*" for OPTIONS). */
  path: string;
  scheme: "http" | "https";
  /** Used when the request carries no Host. */
  defaultAuthority: string;
}

/** Whether an HTTP/1.1 header (lowercase name) may be carried in HTTP/2 as it is. */
export function isConnectionSpecific(lowerName: string, value: string): boolean {
  if (CONNECTION_SPECIFIC.has(lowerName)) return true;
  // TE is allowed in HTTP/2 with the single value "trailers" (gRPC needs it end to end).
  return lowerName === "te" && value.trim().toLowerCase() !== "trailers";
}

/**
 * HTTP/1.1 request head (name, value, ... list, Host included) → HTTP/2 request headers. The result
 * is a plain object for node:http2; a name that repeats gets an array, in arrival order.
 */
export function h1RequestToH2(target: H2RequestTarget, headers: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ":method": target.method,
    ":scheme": target.scheme,
    ":path": target.path,
  };
  let authority: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i].toLowerCase();
    const value = headers[i + 1];
    if (name === "host") {
      authority ??= value;
      continue;
    }
    if (isConnectionSpecific(name, value)) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev as string, value];
  }
  out[":authority"] = authority ?? target.defaultAuthority;
  return out;
}

/**
 * An HTTP/2 header list (node:http2's raw form: name, value, ...) → an HTTP/1.1 list: pseudo-headers
 * removed, connection-specific ones (a non-conforming peer may send them) dropped. Used for response
 * headers and trailers.
 */
export function h2ListToH1(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const value = raw[i + 1];
    if (isConnectionSpecific(name, value)) continue;
    out.push(name, value);
  }
  return out;
}

export interface H1RequestHead {
  method: string;
  path: string;
  /** name, value, ... with Host first (from :authority); cookies joined with "; " (RFC 9113 §8.2.3). */
  headers: string[];
}

/** HTTP/2 request header list (raw, as node:http2 delivers it) → an HTTP/1.1 request head. */
export function h2RequestToH1(raw: readonly string[]): H1RequestHead {
  let method = "";
  let path = "";
  let authority: string | undefined;
  let cookie: string | undefined;
  let host: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ":method") method = value;
      else if (name === ":path") path = value;
      else if (name === ":authority") authority = value;
      continue;
    }
    if (name === "cookie") cookie = cookie === undefined ? value : `${cookie}; ${value}`;
    else if (name === "host") host ??= value;
    else if (!isConnectionSpecific(name, value)) rest.push(name, value);
  }
  const headers: string[] = [];
  const h = authority ?? host;
  if (h !== undefined) headers.push("host", h);
  for (const x of rest) headers.push(x);
  if (cookie !== undefined) headers.push("cookie", cookie);
  return { method, path, headers };
}
