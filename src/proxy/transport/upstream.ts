// The contract between a request (http/exchange.ts) and whatever carries it to an upstream endpoint.
// It is undici's dispatch-handler contract (the callback form undici runs natively), so an undici
// Pool and weft's own HTTP/1.1 pool (h1-pool.ts) are interchangeable behind it.
//
// Order of calls on a handler: onConnect(abort), then either onError(err), or onHeaders → zero or
// more onData → onComplete (or onError after onHeaders when the response breaks off). onConnect may
// come again with a new abort (once a connection is up, or when a request is retried on a fresh
// connection): the latest abort counts, and it is valid only until onComplete / onError.

import type { Readable } from "node:stream";
import { WeftError, type WeftErrorCode } from "../errors.ts";

export interface UpstreamRequest {
  method: string;
  /** Origin-form target: "/path?query". */
  path: string;
  /** name, value, name, value, ... (Host included, hop-by-hop already removed). */
  headers: string[];
  /** The client's request body (streamed, with backpressure), or null for none. */
  body: Readable | null;
  /** Until the response headers (ms); 0 disables. */
  headersTimeout: number;
  /** Longest silence while the response body streams (ms); 0 disables. */
  bodyTimeout: number;
}

export interface UpstreamHandler {
  /** `abort` cancels the request (and its connection); after it, onError follows. */
  onConnect(abort: (err?: Error) => void): void;
  /**
   * Return false to pause the body until `resume()`. Headers as name, value, ... (Buffers or
   * strings). `endStream`: the head ended the response (HTTP/2 END_STREAM; a gRPC trailers-only
   * response) — onComplete follows with no data; HTTP/1.1 transports do not tell.
   */
  onHeaders(
    statusCode: number,
    headers: (Buffer | string)[],
    resume: () => void,
    statusText: string,
    endStream?: boolean,
  ): boolean;
  /** Return false to pause until `resume()`. */
  onData(chunk: Buffer): boolean;
  onComplete(trailers: (Buffer | string)[] | null): void;
  onError(err: Error): void;
}

export interface UpstreamDispatcher {
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): boolean;
  /** Finish in-flight requests, then close. */
  close(): Promise<void>;
  /** Close now, failing in-flight requests. */
  destroy(): Promise<void>;
}

/** Upstream failures raised by weft's own HTTP/1.1 and HTTP/2 clients (a part of ../errors.ts' catalogue). */
export type UpstreamErrorCode = Extract<
  WeftErrorCode,
  | "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT"
  | "WEFT_ERR_UPSTREAM_BODY_TIMEOUT"
  | "WEFT_ERR_UPSTREAM_PROTOCOL"
  | "WEFT_ERR_UPSTREAM_CLOSED"
  | "WEFT_ERR_REQUEST_BODY"
  | "WEFT_ERR_REQUEST_INVALID"
  | "WEFT_ERR_POOL_CLOSED"
  | "WEFT_ERR_CIRCUIT_OPEN"
>;

/**
 * `requestSent` is false only when provably nothing of the request was written to any socket (a
 * queue refused it, a pool closed before it left): it may be sent elsewhere. true (the default)
 * means "sent, outcome unknown": the upstream may have received and processed it, so only the
 * route's retry policy may repeat it.
 */
export class UpstreamError extends WeftError {
  declare readonly code: UpstreamErrorCode;
  constructor(
    code: UpstreamErrorCode,
    message: string,
    options?: { cause?: unknown; requestSent?: boolean },
  ) {
    super(code, message, options);
    this.name = "UpstreamError";
  }
}

/**
 * Whether an attempt's error proves the request never left the proxy (connect refused or timed out,
 * TLS handshake failed, no certificate, pool closed or full): then, and only then, it may be sent
 * again without asking the retry policy. Errors that do not say so count as "sent".
 */
export function requestNotSent(err: unknown): boolean {
  return (err as { requestSent?: unknown } | null)?.requestSent === false;
}
