// gRPC-shaped local replies (product.md §6): when the proxy answers a gRPC request itself, the
// caller's gRPC library must see a gRPC status carrying weft's reason — `UNAVAILABLE:
// upstream_unavailable: reviews.default has no endpoints` — never "protocol error: received HTTP 503
// with content-type text/plain".
//
// The reply is a trailers-only response (gRPC's PROTOCOL-HTTP2.md): HTTP 200, content-type
// application/grpc, grpc-status and grpc-message in the one header block, no body. On HTTP/2 the
// edge sends it as a single HEADERS frame with END_STREAM; an HTTP/1.1 edge as a 200 with an empty
// body. The same `x-weft-error: <code>` header as on every local reply says which catalogue entry
// (src/proxy/errors.ts) it was; the edge counts it in weft_local_replies_total like the others.

import { GRPC_STATUS, grpcStatusName, type GrpcStatusCode } from "../../model/grpc-status.ts";
import type { LocalReply, LocalReplyCode } from "../errors.ts";
import { grpcStatusFromHttp } from "./status.ts";

/**
 * The gRPC status of each local reply. Exhaustive on purpose: a new catalogue code does not compile
 * until it says what a gRPC caller sees. Where gRPC's HTTP mapping (doc/http-grpc-status-mapping.md)
 * covers the code's HTTP status it is followed (404 → UNIMPLEMENTED, 429/502/503 → UNAVAILABLE,
 * 400 → INTERNAL), except where the cause is known more precisely than the HTTP status says.
 */
export const GRPC_STATUS_OF_LOCAL_REPLY: Readonly<Record<LocalReplyCode, GrpcStatusCode>> = {
  // No route: the method is not served here, as a gRPC server says for an unknown method.
  no_route: GRPC_STATUS.UNIMPLEMENTED,
  upstream_unavailable: GRPC_STATUS.UNAVAILABLE,
  // The connection broke before an answer: transient, and what gRPC clients report for a reset.
  upstream_reset: GRPC_STATUS.UNAVAILABLE,
  upstream_tls_error: GRPC_STATUS.UNAVAILABLE,
  timeout: GRPC_STATUS.DEADLINE_EXCEEDED,
  request_timeout: GRPC_STATUS.DEADLINE_EXCEEDED,
  bad_request: GRPC_STATUS.INTERNAL,
  // gRPC's own servers answer oversized metadata with RESOURCE_EXHAUSTED.
  headers_too_large: GRPC_STATUS.RESOURCE_EXHAUSTED,
  not_ready: GRPC_STATUS.UNAVAILABLE,
  unsupported: GRPC_STATUS.UNIMPLEMENTED,
  mtls_required: GRPC_STATUS.UNAUTHENTICATED,
  untrusted_peer: GRPC_STATUS.PERMISSION_DENIED,
  // As gRPC's mapping of 429 and Envoy's default: clients back off and retry UNAVAILABLE.
  rate_limited: GRPC_STATUS.UNAVAILABLE,
  circuit_open: GRPC_STATUS.UNAVAILABLE,
  // The configured abort decides (FaultPolicy.abort.grpcStatus, else its HTTP status mapped).
  fault_injected: GRPC_STATUS.UNAVAILABLE,
  // A route's backend names a Service that does not exist (or is not granted), or the rule has none:
  // the Gateway API's GRPCRoute requires UNAVAILABLE for the calls that would have gone there.
  invalid_backend: GRPC_STATUS.UNAVAILABLE,
  internal_error: GRPC_STATUS.INTERNAL,
};

/** Longest detail put into grpc-message (characters, before percent-encoding), as the text body's. */
export const MAX_GRPC_DETAIL = 300;

export interface GrpcLocalReply {
  /** Always 200: the status travels in grpc-status. */
  status: 200;
  grpcStatus: GrpcStatusCode;
  /** Flat [name, value, name, value, …] list (lower-case names), as node:http's writeHead and node:http2's respond take. */
  headers: string[];
}

/**
 * The trailers-only reply to a gRPC request for local reply `code`. `detail` is free text (it may
 * hold anything a peer sent): it is cut to MAX_GRPC_DETAIL characters and percent-encoded, so it
 * cannot break the header. `override` is a FaultInjection's configured gRPC status, or the HTTP
 * status of a fault configured with httpStatus (mapped as gRPC clients map it).
 */
export function grpcLocalReply(
  code: LocalReplyCode,
  detail: string,
  override?: { grpcStatus?: number; httpStatus?: number },
): GrpcLocalReply {
  const grpcStatus = statusFor(code, override);
  return {
    status: 200,
    grpcStatus,
    headers: [
      "content-type",
      "application/grpc",
      "grpc-status",
      String(grpcStatus),
      "grpc-message",
      encodeGrpcMessage(`${code}: ${truncate(detail)}`),
      "x-weft-error",
      code,
    ],
  };
}

/**
 * The listeners' gRPC shape for local replies (LocalReplies' `grpcShape`, ../http/local-reply.ts):
 * a fault abort keeps its configured gRPC status, or its HTTP status mapped; every other code is
 * GRPC_STATUS_OF_LOCAL_REPLY's.
 */
export function grpcReplyShape(reply: LocalReply): string[] {
  const override =
    reply.code === "fault_injected" ? { grpcStatus: reply.grpcStatus, httpStatus: reply.status } : undefined;
  return grpcLocalReply(reply.code, reply.detail, override).headers;
}

function statusFor(
  code: LocalReplyCode,
  o: { grpcStatus?: number; httpStatus?: number } | undefined,
): GrpcStatusCode {
  if (o?.grpcStatus !== undefined && grpcStatusName(o.grpcStatus) !== undefined)
    return o.grpcStatus as GrpcStatusCode;
  if (o?.httpStatus !== undefined)
    return o.httpStatus === 200 ? GRPC_STATUS.OK : grpcStatusFromHttp(o.httpStatus);
  return GRPC_STATUS_OF_LOCAL_REPLY[code];
}

function truncate(detail: string): string {
  if (detail.length <= MAX_GRPC_DETAIL) return detail;
  // Do not cut a surrogate pair in half: a lone surrogate has no UTF-8 encoding.
  let end = MAX_GRPC_DETAIL;
  const c = detail.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return `${detail.slice(0, end)}…`;
}

/**
 * grpc-message encoding (PROTOCOL-HTTP2.md, "Percent-Encoded"): the UTF-8 bytes of the message,
 * with every byte outside printable ASCII (0x20–0x7E) and "%" itself written as %XX. The result is
 * always a valid header value (no CR, LF, NUL or non-ASCII). Lone surrogates become U+FFFD.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const byte of Buffer.from(message.toWellFormed(), "utf8")) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The inverse of encodeGrpcMessage, lenient as the spec asks: a malformed %-sequence is kept as is. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(value[i]!, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}
