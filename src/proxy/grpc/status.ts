// Recognising gRPC on the wire: is a request gRPC (its content-type), and what gRPC status did a
// response carry — read from the response head for a trailers-only response, from the trailers
// otherwise, and derived from the HTTP status when an intermediary answered without one (gRPC's
// doc/http-grpc-status-mapping.md: that is what the calling gRPC client will report).
//
// Everything here reads hostile input (an app or a peer wrote these headers): values are parsed
// strictly and mapped into the 17 defined codes, so a metric label or a retry decision can never
// take a value an upstream chose.

import { GRPC_STATUS, type GrpcStatusCode } from "../../model/grpc-status.ts";

/** A header block as node:http (IncomingHttpHeaders) and node:http2 (IncomingHttpHeaders & pseudo-headers) give it. */
export type HeaderBlock = Readonly<Record<string, string | string[] | number | undefined>>;

/**
 * True for gRPC's content types: `application/grpc`, `application/grpc+<codec>` (proto, json, ...),
 * each optionally with parameters. gRPC-Web (`application/grpc-web…`) is a different framing and is
 * not matched. Case-insensitive, as media types are.
 */
export function isGrpcRequest(contentType: string | string[] | undefined): boolean {
  if (typeof contentType !== "string" || contentType.length < 16) return false;
  const head = contentType.slice(0, 16).toLowerCase();
  if (head !== "application/grpc") return false;
  if (contentType.length === 16) return true;
  const next = contentType.charCodeAt(16);
  // "+" (codec), ";" (parameters), or whitespace before ";".
  return next === 0x2b || next === 0x3b || next === 0x20 || next === 0x09;
}

/**
 * The grpc-status in `headers` as a number 0–16; UNKNOWN (2) for a value that is present but not a
 * defined code (as gRPC clients treat it); undefined when absent.
 */
export function grpcStatusOf(headers: HeaderBlock | undefined): GrpcStatusCode | undefined {
  const raw = headers?.["grpc-status"];
  if (raw === undefined) return undefined;
  const v = Array.isArray(raw) ? raw[0] : raw;
  if (typeof v === "number") return isCode(v) ? v : GRPC_STATUS.UNKNOWN;
  if (typeof v !== "string" || v.length === 0 || v.length > 2) return GRPC_STATUS.UNKNOWN;
  // Digits only: Number() would accept " 1", "0x1", "1e1".
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return GRPC_STATUS.UNKNOWN;
  }
  const n = Number(v);
  return isCode(n) ? n : GRPC_STATUS.UNKNOWN;
}

function isCode(n: number): n is GrpcStatusCode {
  return Number.isInteger(n) && n >= 0 && n <= 16;
}

/** The status a gRPC client reports for a non-200 HTTP response without grpc-status (gRPC's mapping). */
export function grpcStatusFromHttp(httpStatus: number): GrpcStatusCode {
  switch (httpStatus) {
    case 400:
      return GRPC_STATUS.INTERNAL;
    case 401:
      return GRPC_STATUS.UNAUTHENTICATED;
    case 403:
      return GRPC_STATUS.PERMISSION_DENIED;
    case 404:
      return GRPC_STATUS.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC_STATUS.UNAVAILABLE;
    default:
      return GRPC_STATUS.UNKNOWN;
  }
}

/**
 * The gRPC status of a response to a gRPC request, as far as its head tells: grpc-status in the head
 * (a trailers-only response), or the HTTP mapping for a non-200 head. undefined when the status is
 * still to come in the trailers (a 200 head without grpc-status).
 */
export function grpcStatusOfHead(
  httpStatus: number,
  head: HeaderBlock | undefined,
): GrpcStatusCode | undefined {
  const s = grpcStatusOf(head);
  if (s !== undefined) return s;
  return httpStatus === 200 ? undefined : grpcStatusFromHttp(httpStatus);
}

/** Label values for the `grpc_status` metric label, one string per code, allocated once. */
const LABELS: readonly string[] = Array.from({ length: 17 }, (_, i) => String(i));

/**
 * The `grpc_status` label of one grpc-status header value as an upstream sent it: one of the 17
 * preallocated strings (UNKNOWN for anything that is not a defined code), so a hostile upstream can
 * never choose a label value or grow the metric's series.
 */
export function grpcStatusLabelOf(value: string): string {
  const s = grpcStatusOf({ "grpc-status": value });
  return LABELS[s ?? GRPC_STATUS.UNKNOWN]!;
}

/** The label of a gRPC exchange that ended with HTTP `httpStatus` and no grpc-status seen (see grpcStatusLabel). */
export function grpcStatusLabelOfHttp(httpStatus: number): string {
  return LABELS[httpStatus === 200 ? GRPC_STATUS.UNKNOWN : grpcStatusFromHttp(httpStatus)]!;
}

/**
 * The `grpc_status` label of a finished gRPC exchange (product.md §6): the head's status (trailers-only
 * or non-200), else the trailers', else UNKNOWN — a 200 response that ended without a grpc-status is
 * an error to the client ("missing grpc-status"), never OK. Always one of 17 preallocated strings.
 */
export function grpcStatusLabel(
  httpStatus: number,
  head: HeaderBlock | undefined,
  trailers: HeaderBlock | undefined,
): string {
  const s = grpcStatusOfHead(httpStatus, head) ?? grpcStatusOf(trailers) ?? GRPC_STATUS.UNKNOWN;
  return LABELS[s]!;
}
