// The local reply catalogue: every response the proxy produces itself has a stable code (never
// reused for another meaning), sent as `x-weft-error: <code>` and as the body's first word, and
// counted in weft_local_replies_total{direction,code}. Upstream failures are classified here once,
// at the edge, from their cause.

export const LOCAL_REPLIES = {
  /** Host is not a mesh service, or no route of the service matched the request. */
  no_route: { status: 404 },
  /** No endpoints, no backend with weight > 0, or the connection was refused / failed. */
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
  /** A bug in the proxy, caught at the edge so that one request fails, not the process. */
  internal_error: { status: 500 },
} as const;

export type LocalReplyCode = keyof typeof LOCAL_REPLIES;

/** Programmatic error codes (thrown/passed between the proxy's own modules, never on the wire). */
export type ProxyErrorCode =
  | "WEFT_ERR_UPSTREAM_CONNECT"
  | "WEFT_ERR_UPSTREAM_TLS"
  | "WEFT_ERR_UPSTREAM_IDENTITY"
  | "WEFT_ERR_NO_CERTIFICATE";

/** Failures while connecting to an upstream: the request never left the proxy (see transport/upstream.ts). */
export class ProxyError extends Error {
  readonly code: ProxyErrorCode;
  /** Connect-time failures: nothing of the request was written. */
  readonly requestSent = false;
  constructor(code: ProxyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ProxyError";
    this.code = code;
  }
}

export interface Classified {
  code: LocalReplyCode;
  detail: string;
}

/** Maps an upstream failure (undici error, socket error, ProxyError) to a local reply. */
export function classifyUpstreamError(err: unknown, upstream: string): Classified {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case "WEFT_ERR_UPSTREAM_TLS":
    case "WEFT_ERR_UPSTREAM_IDENTITY":
      return { code: "upstream_tls_error", detail: `${upstream}: ${(err as Error).message}` };
    case "WEFT_ERR_NO_CERTIFICATE":
      return { code: "not_ready", detail: `${upstream} needs mTLS and the proxy has no certificate yet` };
    case "WEFT_ERR_UPSTREAM_CONNECT":
      return { code: "upstream_unavailable", detail: `${upstream} ${(err as Error).message}` };
    case "ECONNREFUSED":
      return { code: "upstream_unavailable", detail: `${upstream} refused the connection` };
    case "UND_ERR_CONNECT_TIMEOUT":
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return { code: "upstream_unavailable", detail: `${upstream} unreachable (${code})` };
    case "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT":
    case "WEFT_ERR_UPSTREAM_BODY_TIMEOUT":
      return { code: "timeout", detail: `${upstream} ${(err as Error).message}` };
    case "UND_ERR_HEADERS_TIMEOUT":
      return { code: "timeout", detail: `${upstream} sent no response headers in time` };
    case "UND_ERR_BODY_TIMEOUT":
      return { code: "timeout", detail: `${upstream} stalled while sending the response body` };
    case "WEFT_ERR_REQUEST_BODY":
      return {
        code: "bad_request",
        detail: `request body could not be forwarded: ${(err as Error).message}`,
      };
    case "WEFT_ERR_REQUEST_HEADERS":
      return { code: "bad_request", detail: (err as Error).message };
    case "WEFT_ERR_UPSTREAM_PROTOCOL":
      return {
        code: "upstream_reset",
        detail: `${upstream} sent an invalid response: ${(err as Error).message}`,
      };
    case "WEFT_ERR_UPSTREAM_CLOSED":
      return { code: "upstream_reset", detail: `${upstream} ${(err as Error).message}` };
    case "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH":
      return { code: "bad_request", detail: "request body length does not match Content-Length" };
    case "UND_ERR_INVALID_ARG":
      return { code: "bad_request", detail: `request cannot be forwarded: ${(err as Error).message}` };
    case "WEFT_ERR_CIRCUIT_OPEN":
      return { code: "circuit_open", detail: `${upstream}: ${(err as Error).message}` };
    case "WEFT_ERR_POOL_CLOSED":
    case "UND_ERR_CLOSED":
    case "UND_ERR_DESTROYED":
      return { code: "upstream_unavailable", detail: `connection pool for ${upstream} is closed` };
    default:
      return {
        code: "upstream_reset",
        detail: `${upstream} closed the connection (${String(code ?? "error")})`,
      };
  }
}
