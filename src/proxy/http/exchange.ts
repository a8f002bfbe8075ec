// One request/response through the proxy: the per-request object both listeners create. It carries
// what later layers may look at (method, path, headers, the verified peer), and it is the undici
// dispatch handler that streams the upstream response back to the client. One object per request —
// no per-request closures, promises or AbortControllers; event listeners are module-level functions
// that find their exchange through a symbol on the response.
//
// Streaming both ways with backpressure: the request body (Node's IncomingMessage) is undici's
// request body, which undici pauses/resumes against the upstream socket; the response body is
// written to the client and undici's read is paused until the client drains.
// Failure paths: before response headers → a request that provably never left the proxy may be
// handed to `onNotSent` (the outbound sends it to another endpoint), else a local reply from the
// cause (errors.ts); after them → the client response is destroyed (never a truncated body
// presented as complete). The client going away (response 'close' before the end) aborts the
// upstream request and its connection.

import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { rescue, WeftError, type LocalReplyCode } from "../errors.ts";
import type { StatsByCode } from "../metrics/registry.ts";
import type { RequestView } from "../outbound/route-match.ts";
import type { HttpEdge } from "./server-edge.ts";
import type { RequestHeadFacts } from "./request-head.ts";
import { copyResponseHeaders, trailersObject, type ResponseHeadFacts } from "./response-head.ts";
import {
  requestNotSent,
  type UpstreamDispatcher,
  type UpstreamHandler,
  type UpstreamRequest,
} from "../transport/upstream.ts";
import { appendForwardedFor } from "./request-target.ts";
import { markConnectionClosing } from "./local-reply.ts";
import type { HeaderModifier } from "../../model/snapshot.ts";
import { modifyHeaders } from "../outbound/filters.ts";

const kExchange = Symbol("weft.exchange");
type TaggedResponse = ServerResponse & { [kExchange]?: Exchange };

/** The verified peer of an inbound connection (read once per connection, see inbound/peer.ts). */
export interface PeerInfo {
  /** SPIFFE ID from the peer's certificate; undefined for plaintext (PERMISSIVE) connections. */
  readonly id: string | undefined;
  /** "name.namespace" from the SPIFFE ID, or "unknown". */
  readonly service: string;
}

export interface UpstreamTimeouts {
  /** Until the upstream's response headers (ms); 0 disables. */
  responseHeadersMs: number;
  /** Longest pause between body chunks in either direction (ms); 0 disables. */
  bodyIdleMs: number;
}

/**
 * Both listeners' defaults. No response-headers timeout, as in Istio: long polls and slow streaming
 * answers work unless a route sets `timeouts` (whose deadline the calling sidecar then passes on in
 * DEADLINE_HEADER) or the proxy is started with --response-headers-timeout. Body silence is bounded.
 */
export const DEFAULT_TIMEOUTS: UpstreamTimeouts = { responseHeadersMs: 0, bodyIdleMs: 300_000 };

/** Set by the calling sidecar on mesh requests: milliseconds left for the response headers. */
export const DEADLINE_HEADER = "x-weft-deadline-ms";
/** The longest deadline a caller may ask for (a day); longer ones are cut to it. */
export const MAX_DEADLINE_MS = 86_400_000;

/** A DEADLINE_HEADER value: whole milliseconds > 0, capped; undefined when malformed. */
export function parseDeadline(value: string): number | undefined {
  if (!/^[0-9]{1,12}$/.test(value)) return undefined;
  const ms = Number(value);
  return ms > 0 ? Math.min(ms, MAX_DEADLINE_MS) : undefined;
}

/** Where the default response-headers timeout is set, for 504 details. */
export const DEFAULT_TIMEOUT_LIMIT = "weft proxy --response-headers-timeout";

export const OPEN = 0; // routing, or dispatched and waiting for response headers
const STREAMING = 1; // response headers sent to the client
export const DONE = 2; // finished, failed, or the client went away

/** A client that went away; passed to the transport's abort so the upstream request is cancelled. */
function clientGone(): WeftError {
  return new WeftError("WEFT_ERR_CLIENT_GONE", "client went away");
}

/** The exchange a response belongs to, once it was forwarded. */
export function exchangeOf(res: ServerResponse): Exchange | undefined {
  return (res as TaggedResponse)[kExchange];
}

function onResponseClose(this: TaggedResponse): void {
  this[kExchange]?.clientClosed();
}

function onResponseDrain(this: TaggedResponse): void {
  this[kExchange]?.resumeUpstream();
}

function dispatchDeferred(x: Exchange, dispatcher: UpstreamDispatcher, request: UpstreamRequest): void {
  const socket = x.req.socket;
  // The parser may have rejected the rest of this request (e.g. a bad chunk) in the same read.
  if (x.state !== OPEN || socket === null || socket.destroyed || socket.writableEnded) return;
  dispatcher.dispatch(request, x);
}

export class Exchange implements RequestView, RequestHeadFacts, ResponseHeadFacts, UpstreamHandler {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly edge: HttpEdge;
  readonly startedAt: number = performance.now();
  /**
   * The request's end-to-end headers (name, value, ...), as route filters may change them. Never Host,
   * Content-Length, Transfer-Encoding or X-Forwarded-*: those are facts below, and `hopHeaders`
   * builds the upstream head from them.
   */
  readonly headers: string[] = [];
  /** Origin-form request target (path and query) sent upstream. */
  target = "/";
  /** Where the request went, for error details: "reviews.default at 10.0.0.7:9080". */
  upstream = "";
  stats: StatsByCode;
  peer: PeerInfo | undefined = undefined;
  state = OPEN;
  status = 0;
  /** ResponseHeaderModifier of the route, applied to the upstream's response headers. */
  responseHeaders: HeaderModifier | undefined = undefined;
  /**
   * Called once when the exchange ends, with the local reply code if it failed here. Listeners
   * that account per endpoint (balancers, outlier detection, circuit breakers) set it with
   * `accountRef`; a module-level function, so no closure per request.
   */
  onEnd: ((x: Exchange, failure: LocalReplyCode | undefined) => void) | undefined = undefined;
  accountRef: unknown = undefined;
  /**
   * Called when the upstream request failed before any byte of it was written (connect refused,
   * TLS handshake failed, ...): return true after dispatching `upstreamRequest` elsewhere, false to
   * let the failure be answered. A module-level function (see onEnd); `retryRef` is its data.
   */
  onNotSent: ((x: Exchange, err: Error) => boolean) | undefined = undefined;
  retryRef: unknown = undefined;
  /** Times onNotSent sent the request elsewhere. */
  resends = 0;
  /** The balancer's hash key (RingHash / Maglev), so a request sent elsewhere walks on along the ring. */
  hashKey: string | undefined = undefined;
  /** What forward() dispatched, for onNotSent. */
  upstreamRequest: UpstreamRequest | undefined = undefined;

  // RequestHeadFacts
  host: string | undefined = undefined;
  hostCount = 0;
  contentLength: string | undefined = undefined;
  hasBody = false;
  transferEncoding: string | undefined = undefined;
  forwardedFor: string | undefined = undefined;
  forwardedProto: string | undefined = undefined;
  requestId: string | undefined = undefined;
  upgrade: string | undefined = undefined;
  deadline: string | undefined = undefined;
  /** Which limit a response-headers timeout is and where it is set, for the 504's detail. */
  timeoutLimit: string | undefined = undefined;
  // ResponseHeadFacts
  grpcStatus: string | undefined = undefined;

  #abort: ((err?: Error) => void) | undefined = undefined;
  #resume: (() => void) | undefined = undefined;
  #drainHooked = false;
  #params: URLSearchParams | undefined = undefined;
  #path: string | undefined = undefined;
  #failure: LocalReplyCode | undefined = undefined;

  constructor(req: IncomingMessage, res: ServerResponse, edge: HttpEdge, stats: StatsByCode) {
    this.req = req;
    this.res = res;
    this.edge = edge;
    this.stats = stats;
  }

  // --- RequestView (route matching, policy) ---

  get method(): string {
    return this.req.method as string;
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

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(",") : v;
  }

  queryParam(name: string): string | null {
    this.#params ??= new URLSearchParams(this.query);
    return this.#params.get(name);
  }

  // --- outcomes ---

  /**
   * Answers locally (see errors.ts). `close` ends the connection (bad framing). Otherwise the rest of
   * an unread request body is read and discarded, so the connection can carry the next request —
   * closing on a client that is still sending would reset the connection and lose the reply.
   */
  reply(code: LocalReplyCode, detail: string, close = false, status?: number): void {
    if (this.state === DONE) return;
    this.state = DONE;
    if (!close && this.hasBody && !this.req.complete) this.req.resume();
    this.#failure = code;
    this.#record(this.edge.replies.send(this.res, code, detail, close || this.edge.draining, status));
  }

  /** Answers with a response the proxy makes itself that is not an error (a route's redirect). */
  respond(status: number, headers: string[]): void {
    if (this.state === DONE) return;
    this.state = DONE;
    if (this.hasBody && !this.req.complete) this.req.resume();
    const res = this.res;
    headers.push("content-length", "0");
    if (this.edge.draining) headers.push("connection", "close");
    res.writeHead(status, headers);
    res.end();
    this.#record(status);
  }

  /**
   * Forwards this request with the headers every hop adds: Host, X-Forwarded-For (appended),
   * X-Forwarded-Proto, and an x-request-id when the client sent none.
   */
  forwardTo(
    dispatcher: UpstreamDispatcher,
    hop: { host: string; clientAddress: string | undefined; proto: string },
    timeouts: { responseHeadersMs: number; bodyIdleMs: number },
  ): void {
    this.forward(dispatcher, {
      method: this.req.method as string,
      path: this.target,
      headers: this.hopHeaders(hop),
      body: this.hasBody ? this.req : null,
      headersTimeout: timeouts.responseHeadersMs,
      bodyTimeout: timeouts.bodyIdleMs,
    });
  }

  /** The connection ends after this response; nothing pipelined behind it is handled. */
  closeAfterResponse(): void {
    this.res.shouldKeepAlive = false;
    markConnectionClosing(this.req.socket);
  }

  /** From now on, the client going away cancels whatever is under way for this exchange. */
  watchClient(): void {
    const res = this.res as TaggedResponse;
    if (res[kExchange] === this) return;
    res[kExchange] = this;
    res.on("close", onResponseClose);
  }

  /**
   * The upstream request head, built from the parsed request: Host (always first, [0..1]), the
   * Content-Length the client sent (a chunked body is re-chunked by the transport), the end-to-end
   * headers (with the client's x-request-id), then X-Forwarded-For (appended), X-Forwarded-Proto,
   * and an x-request-id when the client sent none.
   */
  hopHeaders(hop: { host: string; clientAddress: string | undefined; proto: string }): string[] {
    const e2e = this.headers;
    const h = ["host", hop.host];
    if (this.contentLength !== undefined) h.push("content-length", this.contentLength);
    for (let i = 0; i < e2e.length; i++) h.push(e2e[i]);
    const xff = appendForwardedFor(this.forwardedFor, hop.clientAddress);
    if (xff !== undefined) h.push("x-forwarded-for", xff);
    h.push("x-forwarded-proto", hop.proto);
    if (this.requestId === undefined) h.push("x-request-id", randomUUID());
    return h;
  }

  forward(dispatcher: UpstreamDispatcher, request: UpstreamRequest): void {
    this.watchClient();
    this.upstreamRequest = request;
    if (request.body === null) dispatcher.dispatch(request, this);
    // With a body, wait until the parser has consumed the rest of this read: a framing error in it
    // (bad chunk, ...) then stops the request before the upstream sees anything. (nextTick is too
    // early: with TLS, Node drains the tick queue between the parser's callbacks.)
    else setImmediate(dispatchDeferred, this, dispatcher, request);
  }

  clientClosed(): void {
    this.abandon(0);
  }

  /** Ends the exchange without a response from here (the client left, or was answered at the parser). */
  abandon(status: number): void {
    if (this.state === DONE) return;
    this.state = DONE;
    this.#abort?.(clientGone());
    this.#record(status);
  }

  resumeUpstream(): void {
    this.#resume?.();
  }

  #record(status: number): void {
    this.stats.get(status, this.grpcStatus).record((performance.now() - this.startedAt) / 1000);
    if (this.onEnd !== undefined) this.onEnd(this, this.#failure);
  }

  // --- UpstreamHandler (transport/upstream.ts): the upstream's response, streamed to the client ---

  onConnect(abort: (err?: Error) => void): void {
    if (this.state === DONE) abort(clientGone());
    else this.#abort = abort;
  }

  onHeaders(statusCode: number, raw: (Buffer | string)[], resume: () => void): boolean {
    if (this.state !== OPEN) return false;
    const out: string[] = [];
    copyResponseHeaders(raw, out, this);
    if (this.responseHeaders !== undefined) modifyHeaders(out, this.responseHeaders);
    if (this.edge.draining) out.push("connection", "close");
    const res = this.res;
    res.sendDate = false;
    try {
      res.writeHead(statusCode, out);
    } catch (err) {
      // The upstream sent a header Node refuses to write (invalid characters): nothing was sent yet.
      // Reply first (state DONE), so the abort's onError does not answer a second time.
      this.reply("upstream_reset", `${this.upstream} sent an invalid response header`, true);
      this.#abort?.(err as Error);
      return false;
    }
    this.status = statusCode;
    this.#resume = resume;
    this.state = STREAMING;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.state !== STREAMING) return false;
    if (this.res.write(chunk)) return true;
    if (!this.#drainHooked) {
      this.#drainHooked = true;
      this.res.on("drain", onResponseDrain);
    }
    return false;
  }

  onComplete(trailers: (Buffer | string)[] | null): void {
    if (this.state !== STREAMING) return;
    this.state = DONE;
    const res = this.res;
    if (trailers !== null && trailers.length > 0) {
      const t = trailersObject(trailers, this);
      if ((res as ServerResponse & { chunkedEncoding?: boolean }).chunkedEncoding) res.addTrailers(t);
    }
    res.end();
    this.#record(this.status);
  }

  onError(err: Error): void {
    if (this.state === DONE) return;
    if (this.state === OPEN) {
      if (this.onNotSent !== undefined && requestNotSent(err) && this.onNotSent(this, err)) return;
      const { code, detail } = rescue(err, this.upstream);
      const limit = this.timeoutLimit;
      this.reply(code, code === "timeout" && limit !== undefined ? `${detail} (${limit})` : detail);
      return;
    }
    // Response already started: abort it so the client sees a failure, not a short body.
    this.state = DONE;
    this.#failure = "upstream_reset";
    this.res.destroy();
    this.#record(this.status);
  }
}
