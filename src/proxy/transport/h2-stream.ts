// One request carried on one HTTP/2 stream of an upstream session (h2-session.ts): the request's
// headers converted (h2-headers.ts), its body written with back-pressure (the client's body pauses
// while the stream's flow-control window and buffer are full), the response handed to the request's
// UpstreamHandler — a handler returning false pauses the stream, so h2 flow control stops the
// upstream rather than weft buffering — and the trailers delivered to onComplete (grpc-status).
//
// requestSent (see upstream.ts) on failure: false when the stream never got an id, the upstream
// refused it (RST_STREAM REFUSED_STREAM), or it is above the last stream id of a GOAWAY (RFC 9113
// §8.7: such streams were not processed); true otherwise. The stream is never sent again here.

import http2 from "node:http2";
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from "node:http2";
import { STATUS_CODES } from "node:http";
import type { Readable } from "node:stream";
import { h1RequestToH2, h2ListToH1, type H2RequestTarget } from "./h2-headers.ts";
import { UpstreamError, type UpstreamHandler, type UpstreamRequest } from "./upstream.ts";

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** What a stream needs from its session. */
export interface StreamOwner {
  readonly session: ClientHttp2Session;
  readonly scheme: "http" | "https";
  readonly authority: string;
  /** Last stream id of a GOAWAY received, or undefined. */
  readonly goawayLastStreamId: number | undefined;
  streamDone(): void;
}

/** RFC 9113 §7 error code names, for error details. */
const ERROR_CODES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

function codeName(code: number): string {
  return ERROR_CODES[code] ?? `error code ${code}`;
}

export class H2Stream {
  readonly #owner: StreamOwner;
  readonly #request: UpstreamRequest;
  readonly #handler: UpstreamHandler;
  #stream: ClientHttp2Stream | undefined;
  #body: Readable | null = null;
  #bodyPaused = false;
  #responded = false;
  #done = false;
  #trailers: string[] | null = null;
  #timer: NodeJS.Timeout | undefined;
  #streamError: Error | undefined;

  constructor(owner: StreamOwner, request: UpstreamRequest, handler: UpstreamHandler) {
    this.#owner = owner;
    this.#request = request;
    this.#handler = handler;
  }

  start(): void {
    const req = this.#request;
    const o = this.#owner;
    const target: H2RequestTarget = {
      method: req.method,
      path: req.path,
      scheme: o.scheme,
      defaultAuthority: o.authority,
    };
    let stream: ClientHttp2Stream;
    try {
      stream = o.session.request(h1RequestToH2(target, req.headers), { endStream: req.body === null });
    } catch (err) {
      // Invalid header name or value (node:http2 validates), or the session closed meanwhile.
      this.#finish(
        new UpstreamError(
          "WEFT_ERR_REQUEST_INVALID",
          `request cannot be sent over HTTP/2: ${(err as Error).message}`,
          {
            cause: err,
            requestSent: false,
          },
        ),
      );
      return;
    }
    this.#stream = stream;
    this.#handler.onConnect(this.abort);
    if (this.#done) return; // aborted from onConnect
    // 'data' is listened to from the head on (#onResponse): node:http2 emits 'response' on the next
    // tick but may push the DATA read with it at once, and the handler drops body before head.
    stream.on("response", this.#onResponse);
    stream.on("trailers", this.#onTrailers);
    stream.on("end", this.#onEnd);
    stream.on("error", this.#onError);
    stream.on("close", this.#onClose);
    if (req.headersTimeout > 0) this.#timer = setTimeout(this.#onHeadersTimeout, req.headersTimeout);
    const body = req.body;
    if (body !== null) {
      this.#body = body;
      stream.on("drain", this.#onDrain);
      body.on("data", this.#onBodyData);
      body.on("end", this.#onBodyEnd);
      body.on("error", this.#onBodyError);
      body.on("aborted", this.#onBodyAborted);
    }
  }

  /** Cancels the request (RST_STREAM CANCEL); onError follows at once. */
  readonly abort = (err?: Error): void => {
    if (this.#done) return;
    this.#finish(err ?? new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", "request aborted"));
  };

  // --- response ---

  readonly #onResponse = (headers: IncomingHttpHeaders, flags: number, raw: string[]): void => {
    if (this.#done) return;
    this.#responded = true;
    clearTimeout(this.#timer);
    const ms = this.#request.bodyTimeout;
    if (ms > 0) this.#stream?.setTimeout(ms, this.#onBodyTimeout);
    const status = Number(headers[":status"]);
    const s = this.#stream as ClientHttp2Stream;
    const endStream = (flags & 0x1) !== 0; // END_STREAM: a trailers-only response
    if (
      !this.#handler.onHeaders(status, h2ListToH1(raw), this.#resume, STATUS_CODES[status] ?? "", endStream)
    )
      s.pause(); // before the listener, which would otherwise start the flow
    // Body read so far was buffered by the stream (not flowing yet): it follows the head now.
    s.on("data", this.#onData);
  };

  readonly #resume = (): void => {
    if (!this.#done) this.#stream?.resume();
  };

  readonly #onData = (chunk: Buffer): void => {
    if (this.#done) return;
    if (!this.#handler.onData(chunk)) this.#stream?.pause();
  };

  readonly #onTrailers = (_t: IncomingHttpHeaders, _flags: number, raw: string[]): void => {
    this.#trailers = h2ListToH1(raw);
  };

  readonly #onEnd = (): void => {
    if (this.#done) return;
    const s = this.#stream as ClientHttp2Stream;
    // A reset also ends the readable side: only a clean end completes the response. (node:http2 also
    // ends a stream on RST_STREAM NO_ERROR without END_STREAM; that case is not told apart yet.)
    if (!this.#responded || (s.rstCode !== undefined && s.rstCode !== NGHTTP2_NO_ERROR))
      return this.#onClose();
    this.#done = true;
    this.#cleanup();
    // The upstream answered before reading the whole request body: stop sending it (RFC 9113 §8.1).
    if (!s.closed && !s.writableFinished) s.destroy();
    this.#owner.streamDone();
    this.#handler.onComplete(this.#trailers);
  };

  readonly #onError = (err: Error): void => {
    this.#streamError ??= err;
  };

  readonly #onClose = (): void => {
    if (this.#done) return;
    const s = this.#stream as ClientHttp2Stream;
    const rst = s.rstCode ?? 0;
    const last = this.#owner.goawayLastStreamId;
    const notSent =
      s.id === undefined || rst === NGHTTP2_REFUSED_STREAM || (last !== undefined && s.id > last);
    let what: string;
    if (notSent)
      what =
        rst === NGHTTP2_REFUSED_STREAM
          ? "refused the stream (REFUSED_STREAM)"
          : "closed the connection (GOAWAY) before the request was processed";
    else if (rst !== 0 && rst !== NGHTTP2_NO_ERROR)
      what = `reset the stream ${this.#responded ? "mid-response" : "before responding"} (${codeName(rst)})`;
    else what = `closed the stream ${this.#responded ? "mid-response" : "before responding"}`;
    this.#finish(
      new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", what, {
        cause: this.#streamError,
        requestSent: !notSent,
      }),
    );
  };

  readonly #onHeadersTimeout = (): void => {
    if (this.#done || this.#responded) return;
    this.#finish(
      new UpstreamError(
        "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT",
        `sent no response headers within ${this.#request.headersTimeout} ms`,
      ),
    );
  };

  readonly #onBodyTimeout = (): void => {
    if (this.#done) return;
    this.#finish(
      new UpstreamError(
        "WEFT_ERR_UPSTREAM_BODY_TIMEOUT",
        `sent nothing for ${this.#request.bodyTimeout} ms mid-response`,
      ),
    );
  };

  // --- request body ---

  readonly #onBodyData = (chunk: Buffer): void => {
    const s = this.#stream;
    if (s === undefined || s.destroyed) return;
    if (!s.write(chunk) && !this.#bodyPaused) {
      this.#bodyPaused = true;
      this.#body?.pause();
    }
  };

  readonly #onDrain = (): void => {
    if (this.#bodyPaused) {
      this.#bodyPaused = false;
      this.#body?.resume();
    }
  };

  readonly #onBodyEnd = (): void => {
    this.#detachBody();
    const s = this.#stream;
    if (s !== undefined && !s.destroyed) s.end();
  };

  readonly #onBodyError = (err: Error): void => {
    if (this.#done) return;
    this.#finish(new UpstreamError("WEFT_ERR_REQUEST_BODY", "client request body failed", { cause: err }));
  };

  readonly #onBodyAborted = (): void => {
    this.#onBodyError(new Error("client aborted the request"));
  };

  #detachBody(): void {
    const b = this.#body;
    if (b === null) return;
    this.#body = null;
    b.removeListener("data", this.#onBodyData);
    b.removeListener("end", this.#onBodyEnd);
    b.removeListener("error", this.#onBodyError);
    b.removeListener("aborted", this.#onBodyAborted);
    if (this.#bodyPaused) {
      this.#bodyPaused = false;
      b.resume();
    }
  }

  #cleanup(): void {
    clearTimeout(this.#timer);
    this.#detachBody();
    const s = this.#stream;
    if (s !== undefined) {
      s.setTimeout(0);
      s.removeListener("drain", this.#onDrain);
    }
  }

  /** Fails the request once: cancels the stream if still open, then tells the handler. */
  #finish(err: UpstreamError | Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#cleanup();
    const s = this.#stream;
    // close() would first end the request body (END_STREAM on a truncated body): only when it is
    // complete; otherwise destroy, which resets at once (INTERNAL_ERROR).
    if (s !== undefined && !s.closed) {
      if (s.writableEnded) s.close(NGHTTP2_CANCEL);
      else s.destroy(err);
    }
    this.#owner.streamDone();
    this.#handler.onError(err);
  }
}
