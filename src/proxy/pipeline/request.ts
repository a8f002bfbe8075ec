// The request record: what every layer of the pipeline may look at, whatever protocol it came in
// on. An edge fills it from its own framing (HTTP/1.1: request line and raw headers, see
// ../http/h1-exchange.ts; HTTP/2: pseudo-headers and the header object), and route matching,
// filters and policies read only this. It is the base class of the per-request Exchange, so a
// request is one object.
//
// The end-to-end headers are a flat list (name, value, ...), without what the proxy frames or sets
// itself (Host, Content-Length, Transfer-Encoding, X-Forwarded-*): those are facts below, and
// `hopHeaders` builds the upstream head from them, so filters can never re-frame a request.

import type { Readable } from "node:stream";
import type { RequestHeadFacts } from "../http/request-head.ts";
import type { RequestView } from "../outbound/route-match.ts";

/** The verified peer of an inbound connection (read once per connection, see inbound/peer.ts). */
export interface PeerInfo {
  /** SPIFFE ID from the peer's certificate; undefined for plaintext (PERMISSIVE) connections. */
  readonly id: string | undefined;
  /** "name.namespace" from the SPIFFE ID, or "unknown". */
  readonly service: string;
}

export abstract class ProxyRequest implements RequestView, RequestHeadFacts {
  readonly method: string;
  /** The scheme the client used to reach this proxy: "https" on a TLS edge. */
  readonly scheme: "http" | "https";
  /** Where the request is addressed: absolute-form / CONNECT tunnel / :authority, else Host. */
  authority: string | undefined = undefined;
  /** Origin-form request target (path and query) sent upstream. */
  target = "/";
  /** End-to-end headers (name, value, ...), as route filters may change them. */
  readonly headers: string[] = [];
  /** The request body, streamed with back-pressure; null when the request has none. */
  body: Readable | null = null;
  /** The verified peer (inbound); undefined on the outbound listener. */
  peer: PeerInfo | undefined = undefined;
  /** The client's address, for X-Forwarded-For. */
  clientAddress: string | undefined = undefined;
  readonly startedAt: number = performance.now();

  // RequestHeadFacts (../http/request-head.ts)
  host: string | undefined = undefined;
  hostCount = 0;
  contentLength: string | undefined = undefined;
  hasBody = false;
  transferEncoding: string | undefined = undefined;
  forwardedFor: string | undefined = undefined;
  forwardedProto: string | undefined = undefined;
  requestId: string | undefined = undefined;
  upgrade: string | undefined = undefined;
  /** x-weft-deadline-ms as received (only a verified mesh peer's is honoured: see inbound). */
  deadline: string | undefined = undefined;
  /** x-weft-dst-port: the service port a mesh request targets, set by the calling sidecar (dst-port.ts). */
  dstPort: string | undefined = undefined;
  /** content-type application/grpc*: local replies are gRPC-shaped, trailers are expected. */
  grpc = false;
  /** grpc-timeout as received; hopHeaders writes it upstream again (the time left, with a deadline). */
  grpcTimeout: string | undefined = undefined;
  /** The caller's deadline (performance.now() ms) once a listener honours it; 0: none. */
  deadlineAt = 0;

  #params: URLSearchParams | undefined = undefined;
  #path: string | undefined = undefined;

  constructor(method: string, scheme: "http" | "https") {
    this.method = method;
    this.scheme = scheme;
  }

  /** Path without the query string. */
  get path(): string {
    if (this.#path === undefined) {
      const q = this.target.indexOf("?");
      this.#path = q === -1 ? this.target : this.target.slice(0, q);
    }
    return this.#path;
  }

  get query(): string {
    const q = this.target.indexOf("?");
    return q === -1 ? "" : this.target.slice(q + 1);
  }

  /** A request header as received (repeated ones joined with ","), for route matching and policy. */
  abstract header(name: string): string | undefined;

  queryParam(name: string): string | null {
    this.#params ??= new URLSearchParams(this.query);
    return this.#params.get(name);
  }

  /** Route filters changed the target: the cached path must follow. */
  setTarget(target: string): void {
    this.target = target;
    this.#path = undefined;
    this.#params = undefined;
  }
}
