// One pass over a request's raw headers: copies the end-to-end ones to the upstream header list and
// records what the proxy needs (Host, framing, X-Forwarded-*, x-request-id, Upgrade). Then the checks
// that Node's parser (llhttp, strict) does not already make — see smuggling.test.ts for both lists.
//
// What the proxy frames or sets itself (Host, Content-Length, Transfer-Encoding, X-Forwarded-*) is
// recorded as a fact and never copied to the list: the upstream head is built from the facts
// (../pipeline/exchange.ts hopHeaders), so removing the headers that Connection names can only ever remove
// end-to-end headers — it cannot shift, drop or re-frame Host or the body (issue 6, hole 1).
//
// Removed (hop-by-hop, RFC 9110 §7.6.1, and proxy-only): Connection and every header it names,
// Keep-Alive, Proxy-Connection, Proxy-Authorization, TE (except "trailers"), Trailer,
// Transfer-Encoding (the body is re-framed), Upgrade, Expect (answered here with 100-continue),
// X-Forwarded-For / X-Forwarded-Proto (rebuilt by the listener), X-Forwarded-Client-Cert (only the
// inbound listener sets it, from the verified peer certificate), x-weft-deadline-ms and
// x-weft-dst-port (recorded: only the inbound listener reads them, and only from a verified mesh
// peer; apps never see them). grpc-timeout is recorded and written again by hopHeaders, with the
// time the caller has left (../grpc/deadline.ts).

import type { IncomingMessage } from "node:http";

export interface RequestHeadFacts {
  host: string | undefined;
  hostCount: number;
  /** The Content-Length value as received (llhttp accepted it: digits only, one field). */
  contentLength: string | undefined;
  /** Content-Length > 0 or Transfer-Encoding present. */
  hasBody: boolean;
  transferEncoding: string | undefined;
  forwardedFor: string | undefined;
  forwardedProto: string | undefined;
  requestId: string | undefined;
  upgrade: string | undefined;
  /** x-weft-deadline-ms: the time left for response headers, set by the calling sidecar. */
  deadline: string | undefined;
  /** x-weft-dst-port: the service port a mesh request targets, set by the calling sidecar (dst-port.ts). */
  dstPort: string | undefined;
  /** content-type application/grpc (or +proto, +json, ...): a gRPC request. */
  grpc: boolean;
  /** grpc-timeout as received (the last one when repeated). */
  grpcTimeout: string | undefined;
}

/** Connection options that name no header. */
function isPlainConnectionOption(token: string): boolean {
  return token === "" || token === "keep-alive" || token === "close" || token === "upgrade";
}

/**
 * Appends the end-to-end headers of `raw` (Node's rawHeaders: name, value, ...) to `out`, in order and
 * with their original case, and fills `f`. Host is recorded, not copied: the caller places it.
 */
export function scanRequestHeaders(raw: string[], out: string[], f: RequestHeadFacts): void {
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    const lower = name.toLowerCase();
    switch (lower) {
      case "host":
        f.hostCount++;
        f.host = value;
        break;
      case "content-length":
        f.contentLength = value;
        if (value !== "0") f.hasBody = true;
        break;
      case "transfer-encoding":
        // Every field counts: "TE: app" then "TE: chunked" is the list "app, chunked" (refused).
        f.transferEncoding = f.transferEncoding === undefined ? value : `${f.transferEncoding}, ${value}`;
        f.hasBody = true;
        break;
      case "connection":
        connection = connection === undefined ? value : `${connection},${value}`;
        break;
      case "x-forwarded-for":
        f.forwardedFor = f.forwardedFor === undefined ? value : `${f.forwardedFor}, ${value}`;
        break;
      case "x-forwarded-proto":
        f.forwardedProto = value;
        break;
      case "x-request-id":
        f.requestId = value;
        out.push(name, value);
        break;
      case "upgrade":
        f.upgrade = value;
        break;
      case "x-weft-deadline-ms":
        f.deadline = value;
        break;
      case "x-weft-dst-port":
        f.dstPort = value;
        break;
      case "grpc-timeout":
        f.grpcTimeout = value;
        break;
      case "content-type":
        if (value.length >= 16 && /^application\/grpc/i.test(value)) f.grpc = true;
        out.push(name, value);
        break;
      case "te":
        if (/(^|,)\s*trailers\s*(;|,|$)/i.test(value)) out.push(name, "trailers");
        break;
      case "keep-alive":
      case "proxy-connection":
      case "proxy-authorization":
      case "trailer":
      case "expect":
      case "x-forwarded-client-cert":
        break;
      default:
        out.push(name, value);
    }
  }
  if (connection !== undefined) removeConnectionNamed(connection, out, f);
}

/**
 * Removes the headers `connection` names (RFC 9110 §7.6.1) from the end-to-end list, and forgets the
 * client's values of the ones the proxy rebuilds (X-Forwarded-For/-Proto, x-request-id: the proxy then
 * sets its own). Naming Host, Content-Length or Transfer-Encoding changes nothing: they are not in
 * `out`, and the proxy frames the upstream request itself.
 */
function removeConnectionNamed(connection: string, out: string[], f: RequestHeadFacts): void {
  let named: Set<string> | undefined;
  for (const t of connection.split(",")) {
    const token = t.trim().toLowerCase();
    if (isPlainConnectionOption(token)) continue;
    (named ??= new Set()).add(token);
  }
  if (named === undefined) return;
  if (named.has("x-forwarded-for")) f.forwardedFor = undefined;
  if (named.has("x-forwarded-proto")) f.forwardedProto = undefined;
  if (named.has("x-request-id")) f.requestId = undefined;
  let w = 0;
  for (let r = 0; r < out.length; r += 2) {
    if (named.has(out[r].toLowerCase())) continue;
    out[w++] = out[r];
    out[w++] = out[r + 1];
  }
  out.length = w;
}

const CHUNKED = /^[ \t]*chunked[ \t]*$/i;

/**
 * Framing and Host checks beyond llhttp's. Returns why the request is refused (→ 400 bad_request,
 * connection closed, nothing forwarded), or undefined. `absoluteForm`: the target carried an authority.
 */
export function checkRequestHead(
  req: IncomingMessage,
  f: RequestHeadFacts,
  absoluteForm: boolean,
): string | undefined {
  if (req.httpVersionMajor !== 1) return `HTTP/${req.httpVersion} is not supported on this listener`;
  if (f.transferEncoding !== undefined) {
    // llhttp already refuses Transfer-Encoding with Content-Length, and "chunked" not last; it lets
    // other codings before chunked through, which we cannot forward once we re-frame the body.
    if (!CHUNKED.test(f.transferEncoding))
      return `unsupported Transfer-Encoding ${JSON.stringify(f.transferEncoding)}`;
    if (req.httpVersionMinor === 0) return "Transfer-Encoding in an HTTP/1.0 request";
  }
  if (f.hostCount > 1) return "more than one Host header";
  if (f.hostCount === 0 || f.host === "") {
    if (!absoluteForm || req.httpVersionMinor === 1) return "missing Host header";
  }
  return undefined;
}
