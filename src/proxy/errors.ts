// The proxy's one error catalogue. Two kinds of code, each stable and never reused for another meaning:
//
//   - wire codes (LOCAL_REPLIES): what a client sees of a response the proxy made itself, as
//     `x-weft-error: <code>` and the body's first word, counted in weft_local_replies_total;
//   - cause codes (WeftErrorCode, `WEFT_ERR_*`): why something failed inside the proxy, carried by a
//     WeftError (transport/upstream.ts' UpstreamError and the connector's failures are WeftErrors).
//
// A decision on the request path (no route, not ready, rate limited, ...) answers with its wire code
// directly — no Error is built for it on the hot path. A failure that travels up from below (connect,
// TLS, pool, upstream response) is a WeftError, and `rescue` turns it into a local reply, once, at
// the edge: one exhaustive switch, so a new cause code does not compile until it has a reply.
// Errors that are not WeftErrors (undici's, when the undici transport is chosen; raw socket errors)
// are first named in weft's terms by `causeOf`.
//
// gRPC: the reply's shape (HTTP status + text body, or HTTP 200 + grpc-status) is chosen where it is
// written (http/local-reply.ts, by the request's `grpc` flag); the cause → code mapping here is the
// same for both.

export const LOCAL_REPLIES = {
  /** Host is not a mesh service, or no route of the service matched the request. */
  no_route: { status: 404 },
  /** No endpoints, or the connection was refused / failed. */
  upstream_unavailable: { status: 503 },
  /** The upstream closed or reset the connection before a complete response. */
  upstream_reset: { status: 502 },
  /** TLS handshake with the upstream failed, or its SPIFFE ID is not the one expected. */
  upstream_tls_error: { status: 502 },
  /** The upstream did not send response headers in time (per-try or the route's request timeout). */
  timeout: { status: 504 },
  /** The client was too slow sending its request headers. */
  request_timeout: { status: 408 },
  /** Malformed or ambiguous HTTP (request smuggling defences included). */
  bad_request: { status: 400 },
  /** Request headers larger than the listener accepts. */
  headers_too_large: { status: 431 },
  /** The proxy has no config (or no certificate) yet. */
  not_ready: { status: 503 },
  /** A valid request the proxy does not support (CONNECT, Upgrade, https:// absolute-form). */
  unsupported: { status: 501 },
  /** A plaintext client on the inbound (mTLS STRICT) port. */
  mtls_required: { status: 400 },
  /** An mTLS peer whose certificate names another trust domain than the mesh's. */
  untrusted_peer: { status: 403 },
  /** The inbound local rate limit refused the request (token bucket empty). */
  rate_limited: { status: 429 },
  /** A destination's connection-pool limit (max connections, pending or concurrent requests) is reached. */
  circuit_open: { status: 503 },
  /** A FaultInjection abort: the status is the one configured (the catalogue's is the fallback). */
  fault_injected: { status: 503 },
  /**
   * The route picked a backend whose reference cannot be resolved (a Service that does not exist, or
   * one in another namespace without a ReferenceGrant), or the rule has no backend to forward to (no
   * backendRefs, or none with weight > 0): a configuration error, 500 as the Gateway API requires. A
   * Service that exists but has no ready endpoints is upstream_unavailable (503).
   */
  invalid_backend: { status: 500 },
  /** A bug in the proxy, caught at the edge so that one request fails, not the process. */
  internal_error: { status: 500 },
} as const;

export type LocalReplyCode = keyof typeof LOCAL_REPLIES;

/** Every cause code (programmatic, never on the wire). */
export type WeftErrorCode =
  /** Connect refused / unreachable / timed out (nothing sent). */
  | "WEFT_ERR_UPSTREAM_CONNECT"
  /** TLS handshake with the upstream failed (nothing sent). */
  | "WEFT_ERR_UPSTREAM_TLS"
  /** The upstream's SPIFFE ID is not the endpoint's identity (nothing sent). */
  | "WEFT_ERR_UPSTREAM_IDENTITY"
  /** The endpoint needs mTLS and the proxy has no workload certificate yet (nothing sent). */
  | "WEFT_ERR_NO_CERTIFICATE"
  /** No response head within the attempt's timeout. */
  | "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT"
  /** The response body stalled longer than the idle timeout. */
  | "WEFT_ERR_UPSTREAM_BODY_TIMEOUT"
  /** The upstream's response could not be parsed. */
  | "WEFT_ERR_UPSTREAM_PROTOCOL"
  /** The upstream closed or reset the connection before the response was complete. */
  | "WEFT_ERR_UPSTREAM_CLOSED"
  /** The client's request body broke off or did not match its framing. */
  | "WEFT_ERR_REQUEST_BODY"
  /** The request cannot be written upstream as it is (an invalid header or argument). */
  | "WEFT_ERR_REQUEST_INVALID"
  /** The endpoint's pool is closed (config change, shutdown). */
  | "WEFT_ERR_POOL_CLOSED"
  /** The endpoint's pool refused the request: its pending queue is full. */
  | "WEFT_ERR_CIRCUIT_OPEN"
  /** The client went away; passed to the transport's abort (never answered: nobody is listening). */
  | "WEFT_ERR_CLIENT_GONE";

/**
 * The base of every error the proxy raises itself. `requestSent` is false only when provably nothing
 * of the request was written to any socket: it may then be sent elsewhere (see transport/upstream.ts).
 */
export class WeftError extends Error {
  readonly code: WeftErrorCode;
  readonly requestSent: boolean;
  constructor(code: WeftErrorCode, message: string, options?: { cause?: unknown; requestSent?: boolean }) {
    super(message, options);
    this.name = "WeftError";
    this.code = code;
    this.requestSent = options?.requestSent ?? true;
  }
}

/** Failures while connecting to an upstream: the request never left the proxy (transport/connector.ts). */
export class ProxyError extends WeftError {
  constructor(code: WeftErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, { cause: options?.cause, requestSent: false });
    this.name = "ProxyError";
  }
}

/** A local reply: its wire code, the status sent, and what was looked for (never a secret). */
export interface LocalReply {
  code: LocalReplyCode;
  status: number;
  detail: string;
  /** A configured gRPC status for a gRPC-shaped reply (a FaultInjection's abort.grpcStatus). */
  grpcStatus?: number;
}

function reply(code: LocalReplyCode, detail: string): LocalReply {
  return { code, status: LOCAL_REPLIES[code].status, detail };
}

/**
 * Turns a failure into the local reply that answers it. `upstream` names where the request went
 * ("reviews.default at 10.0.0.7:9080"), for the detail.
 */
export function rescue(err: unknown, upstream: string): LocalReply {
  const e = err instanceof WeftError ? err : causeOf(err);
  const code = e.code;
  switch (code) {
    case "WEFT_ERR_UPSTREAM_TLS":
    case "WEFT_ERR_UPSTREAM_IDENTITY":
      return reply("upstream_tls_error", `${upstream}: ${e.message}`);
    case "WEFT_ERR_NO_CERTIFICATE":
      return reply("not_ready", `${upstream} needs mTLS and the proxy has no certificate yet`);
    case "WEFT_ERR_UPSTREAM_CONNECT":
      return reply("upstream_unavailable", `${upstream} ${e.message}`);
    case "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT":
    case "WEFT_ERR_UPSTREAM_BODY_TIMEOUT":
      return reply("timeout", `${upstream} ${e.message}`);
    case "WEFT_ERR_REQUEST_BODY":
      return reply("bad_request", `request body could not be forwarded: ${e.message}`);
    case "WEFT_ERR_REQUEST_INVALID":
      return reply("bad_request", `request cannot be forwarded: ${e.message}`);
    case "WEFT_ERR_UPSTREAM_PROTOCOL":
      return reply("upstream_reset", `${upstream} sent an invalid response: ${e.message}`);
    case "WEFT_ERR_UPSTREAM_CLOSED":
      return reply("upstream_reset", `${upstream} ${e.message}`);
    case "WEFT_ERR_CIRCUIT_OPEN":
      return reply("circuit_open", `${upstream}: ${e.message}`);
    case "WEFT_ERR_POOL_CLOSED":
      return reply("upstream_unavailable", `connection pool for ${upstream} is closed`);
    case "WEFT_ERR_CLIENT_GONE":
      // Nobody reads this reply; it is counted like any other end with no response.
      return reply("upstream_reset", `${upstream}: ${e.message}`);
    default: {
      const unhandled: never = code;
      throw new Error(`no local reply for ${String(unhandled)}`);
    }
  }
}

/** Names a foreign error (undici's, a raw socket's) in weft's terms, keeping it as the cause. */
export function causeOf(err: unknown): WeftError {
  const code = (err as { code?: unknown } | null)?.code;
  const message = (err as { message?: unknown } | null)?.message;
  const opts = { cause: err };
  switch (code) {
    case "ECONNREFUSED":
      return new WeftError("WEFT_ERR_UPSTREAM_CONNECT", "refused the connection", opts);
    case "UND_ERR_CONNECT_TIMEOUT":
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return new WeftError("WEFT_ERR_UPSTREAM_CONNECT", `unreachable (${code})`, opts);
    case "UND_ERR_HEADERS_TIMEOUT":
      return new WeftError("WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT", "sent no response headers in time", opts);
    case "UND_ERR_BODY_TIMEOUT":
      return new WeftError("WEFT_ERR_UPSTREAM_BODY_TIMEOUT", "stalled while sending the response body", opts);
    case "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH":
      return new WeftError("WEFT_ERR_REQUEST_BODY", "body length does not match Content-Length", opts);
    case "UND_ERR_INVALID_ARG":
      return new WeftError("WEFT_ERR_REQUEST_INVALID", String(message), opts);
    case "UND_ERR_CLOSED":
    case "UND_ERR_DESTROYED":
      return new WeftError("WEFT_ERR_POOL_CLOSED", "connection pool closed", opts);
    default:
      return new WeftError(
        "WEFT_ERR_UPSTREAM_CLOSED",
        `closed the connection (${String(code ?? "error")})`,
        opts,
      );
  }
}
