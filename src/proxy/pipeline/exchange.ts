// One request/response through the proxy, whatever the client's protocol: the request record
// (request.ts) plus what happens to it — a local reply, or a forward whose upstream response is
// streamed back. It is the transport's dispatch handler (../transport/upstream.ts), and it talks to
// the client only through the Downstream methods (downstream.ts), which each edge implements in a
// subclass (HTTP/1.1: ../http/h1-exchange.ts). One object per request — no per-request closures,
// promises or AbortControllers.
//
// Streaming both ways with back-pressure: the request body is the transport's request body, paused
// and resumed against the upstream socket; the response body is written to the client and the
// transport's read is paused until the client drains (the edge calls resumeUpstream()).
// Failure paths: before response headers → a request that provably never left the proxy may be
// handed to `onNotSent` (the outbound sends it to another endpoint), else a local reply from the
// cause (../errors.ts rescue); after them → the client response is aborted (never a truncated body
// presented as complete). The client going away aborts the upstream request and its connection.

import { randomUUID } from "node:crypto";
import { rescue, WeftError, type LocalReply, type LocalReplyCode, LOCAL_REPLIES } from "../errors.ts";
import type { StatsByCode } from "../metrics/registry.ts";
import type { HeaderModifier } from "../../model/snapshot.ts";
import { modifyHeaders } from "../http/header-list.ts";
import { appendForwardedFor } from "../http/request-target.ts";
import { copyResponseHeaders, type ResponseHeadFacts } from "../http/response-head.ts";
import {
  requestNotSent,
  type UpstreamDispatcher,
  type UpstreamHandler,
  type UpstreamRequest,
} from "../transport/upstream.ts";
import type { Downstream } from "./downstream.ts";
import type { RequestEvents } from "./events.ts";
import { ProxyRequest } from "./request.ts";
import type { UpstreamTimeouts } from "./timeouts.ts";
import { formatGrpcTimeout } from "../grpc/timeout.ts";

export const OPEN = 0; // routing, or dispatched and waiting for response headers
const STREAMING = 1; // response headers sent to the client
export const DONE = 2; // finished, failed, or the client went away

/** A client that went away; passed to the transport's abort so the upstream request is cancelled. */
function clientGone(): WeftError {
  return new WeftError("WEFT_ERR_CLIENT_GONE", "client went away");
}

/** The per-hop facts of a forward: the Host sent upstream, the client's address, the scheme. */
export interface Hop {
  host: string;
  clientAddress: string | undefined;
  proto: string;
}

/** The deadline timer's callback (module-level: no closure per request). */
function deadlinePassed(x: Exchange): void {
  x.deadlinePassed();
}

function dispatchDeferred(x: Exchange, dispatcher: UpstreamDispatcher, request: UpstreamRequest): void {
  // The parser may have rejected the rest of this request (e.g. a bad chunk) in the same read.
  if (x.state !== OPEN || !x.clientOpen()) return;
  dispatcher.dispatch(request, x);
}

export abstract class Exchange
  extends ProxyRequest
  implements Downstream, ResponseHeadFacts, UpstreamHandler
{
  /** Where the request went, for error details: "reviews.default at 10.0.0.7:9080". */
  upstream = "";
  /** The metric handles for this request's labels, chosen as routing learns them (request-metrics.ts). */
  stats: StatsByCode;
  /** The listener's observers (events.ts). */
  readonly events: RequestEvents;
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
  /** Which limit a response-headers timeout is and where it is set, for the 504's detail. */
  timeoutLimit: string | undefined = undefined;
  // ResponseHeadFacts
  grpcStatus: string | undefined = undefined;

  #abort: ((err?: Error) => void) | undefined = undefined;
  #deadlineTimer: NodeJS.Timeout | undefined = undefined;
  #deadlineWhy = "";
  #resume: (() => void) | undefined = undefined;
  #failure: LocalReplyCode | undefined = undefined;

  constructor(method: string, scheme: "http" | "https", stats: StatsByCode, events: RequestEvents) {
    super(method, scheme);
    this.stats = stats;
    this.events = events;
  }

  // --- Downstream (implemented by each edge) ---
  abstract sendHead(status: number, headers: string[], endStream?: boolean): boolean;
  abstract write(chunk: Buffer): boolean;
  abstract end(trailers: (Buffer | string)[] | null): void;
  abstract abort(): void;
  abstract sendLocalReply(reply: LocalReply, close: boolean, headers: string[] | undefined): number;
  abstract watchClient(): void;
  abstract discardBody(): void;
  abstract clientOpen(): boolean;
  abstract closeAfterResponse(): void;
  abstract readonly draining: boolean;

  // --- outcomes ---

  /**
   * Answers locally (see ../errors.ts). `close` ends the connection (bad framing). Otherwise the
   * rest of an unread request body is read and discarded, so the connection can carry the next
   * request — closing on a client that is still sending would reset the connection and lose the reply.
   */
  reply(
    code: LocalReplyCode,
    detail: string,
    close = false,
    status?: number,
    headers?: string[],
    grpcStatus?: number,
  ): void {
    if (this.state === DONE) return;
    this.state = DONE;
    if (!close) this.discardBody();
    this.#failure = code;
    const r: LocalReply = { code, status: status ?? LOCAL_REPLIES[code].status, detail, grpcStatus };
    this.#record(this.sendLocalReply(r, close || this.draining, headers));
  }

  /** Answers with a response the proxy makes itself that is not an error (a route's redirect). */
  respond(status: number, headers: string[]): void {
    if (this.state === DONE) return;
    this.state = DONE;
    this.discardBody();
    headers.push("content-length", "0");
    this.sendHead(status, headers);
    this.end(null);
    this.#record(status);
  }

  /**
   * Forwards this request with the headers every hop adds: Host, X-Forwarded-For (appended),
   * X-Forwarded-Proto, and an x-request-id when the client sent none.
   */
  forwardTo(dispatcher: UpstreamDispatcher, hop: Hop, timeouts: UpstreamTimeouts): void {
    this.forward(dispatcher, {
      method: this.method,
      path: this.target,
      headers: this.hopHeaders(hop),
      body: this.body,
      headersTimeout: timeouts.responseHeadersMs,
      bodyTimeout: timeouts.bodyIdleMs,
    });
  }

  /**
   * The upstream request head, built from the request record: Host (always first, [0..1]), the
   * Content-Length the client sent (a chunked body is re-chunked by the transport), the end-to-end
   * headers (with the client's x-request-id), then X-Forwarded-For (appended), X-Forwarded-Proto,
   * and an x-request-id when the client sent none.
   */
  hopHeaders(hop: Hop): string[] {
    const e2e = this.headers;
    const h = ["host", hop.host];
    if (this.contentLength !== undefined) h.push("content-length", this.contentLength);
    for (let i = 0; i < e2e.length; i++) h.push(e2e[i]);
    const xff = appendForwardedFor(this.forwardedFor, hop.clientAddress);
    if (xff !== undefined) h.push("x-forwarded-for", xff);
    // The caller's gRPC deadline travels on as the time left of it (a malformed value as it came:
    // the server judges it).
    const gt = this.grpcTimeout;
    if (gt !== undefined)
      h.push(
        "grpc-timeout",
        this.deadlineAt > 0 ? formatGrpcTimeout(this.deadlineAt - performance.now()) : gt,
      );
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

  /**
   * Ends the whole exchange `ms` from now (a gRPC caller's deadline: ../grpc/deadline.ts), response
   * body included: before the response head, with a `timeout` local reply (DEADLINE_EXCEEDED to a
   * gRPC caller); after it, by aborting the response. `why` says whose deadline it is, for the detail.
   */
  setDeadline(ms: number, why: string): void {
    this.deadlineAt = this.startedAt + ms;
    this.#deadlineWhy = why;
    const left = Math.max(0, this.deadlineAt - performance.now());
    this.#deadlineTimer = setTimeout(deadlinePassed, left, this);
  }

  deadlinePassed(): void {
    this.#deadlineTimer = undefined;
    if (this.state === DONE) return;
    const err = new WeftError("WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT", this.#deadlineWhy);
    if (this.state === OPEN) {
      const where = this.upstream === "" ? "" : `${this.upstream} sent no response within the deadline: `;
      this.reply("timeout", `${where}${this.#deadlineWhy}`);
      this.#abort?.(err);
      return;
    }
    // The response has started: cut it off, so the client sees a failure rather than a short stream.
    this.state = DONE;
    this.#failure = "timeout";
    this.#abort?.(err);
    this.abort();
    this.#record(this.status);
  }

  /** Called by the edge when the client went away. */
  clientGone(): void {
    this.abandon(0);
  }

  /** Ends the exchange without a response from here (the client left, or was answered at the parser). */
  abandon(status: number): void {
    if (this.state === DONE) return;
    this.state = DONE;
    this.#abort?.(clientGone());
    this.#record(status);
  }

  /** Called by the edge when the client drained after a write returned false. */
  resumeUpstream(): void {
    this.#resume?.();
  }

  #record(status: number): void {
    if (this.#deadlineTimer !== undefined) {
      clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
    }
    if (this.onEnd !== undefined) this.onEnd(this, this.#failure);
    const end = this.events.end;
    if (end !== undefined) end(this, status, this.#failure);
  }

  // --- UpstreamHandler (../transport/upstream.ts): the upstream's response, streamed to the client ---

  onConnect(abort: (err?: Error) => void): void {
    if (this.state === DONE) abort(clientGone());
    else this.#abort = abort;
  }

  onHeaders(
    statusCode: number,
    raw: (Buffer | string)[],
    resume: () => void,
    _statusText?: string,
    endStream = false,
  ): boolean {
    if (this.state !== OPEN) return false;
    const out: string[] = [];
    copyResponseHeaders(raw, out, this);
    if (this.responseHeaders !== undefined) modifyHeaders(out, this.responseHeaders);
    if (!this.sendHead(statusCode, out, endStream)) {
      // The upstream sent a header the edge refuses to write (invalid characters): nothing was sent
      // yet. Reply first (state DONE), so the abort's onError does not answer a second time.
      this.reply("upstream_reset", `${this.upstream} sent an invalid response header`, true);
      this.#abort?.(new WeftError("WEFT_ERR_UPSTREAM_PROTOCOL", "invalid response header"));
      return false;
    }
    this.status = statusCode;
    this.#resume = resume;
    this.state = STREAMING;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.state === STREAMING) return this.write(chunk);
    // Body bytes before the head break the transport's contract: fail loudly rather than drop them
    // and later present a short body as complete.
    if (this.state === OPEN) {
      const err = new WeftError("WEFT_ERR_UPSTREAM_PROTOCOL", "response body before its head");
      this.reply("upstream_reset", `${this.upstream}: response body before its head`);
      this.#abort?.(err);
    }
    return false;
  }

  onComplete(trailers: (Buffer | string)[] | null): void {
    if (this.state !== STREAMING) return;
    this.state = DONE;
    this.end(trailers);
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
    this.abort();
    this.#record(this.status);
  }
}
