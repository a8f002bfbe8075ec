// One keep-alive HTTP/1.1 connection to an upstream endpoint, carrying one request at a time: it
// writes the request head in one write, streams the request body (as-is with Content-Length, else
// chunked) with backpressure, parses the response (h1-response-parser.ts) and hands it to the
// request's handler, pausing the socket while the client is slow. Listeners are bound once per
// connection; a request allocates nothing here.
//
// A request that fails here is never sent again by the connection or its pool: once its head was
// written the upstream may have received and processed it (a reset or a timeout says nothing
// about that), so every error after the write says requestSent = true and the decision is the
// route's retry policy's (outbound/routed-request.ts). Only a connection found dead before anything
// was written fails with requestSent = false.

import type { Socket } from "node:net";
import { contentLengthOf, RequestBodyWriter, type BodyOwner } from "./h1-request-body.ts";
import { H1ResponseParser, ProtocolError, type ResponseSink } from "./h1-response-parser.ts";
import { UpstreamError, type UpstreamHandler, type UpstreamRequest } from "./upstream.ts";

/** What a connection needs from its pool. */
export interface ConnectionOwner {
  release(conn: H1Connection): void;
  remove(conn: H1Connection): void;
}

export class H1Connection implements ResponseSink, BodyOwner {
  readonly socket: Socket;
  readonly #owner: ConnectionOwner;
  readonly #parser: H1ResponseParser;
  #request: UpstreamRequest | null = null;
  #handler: UpstreamHandler | null = null;
  #timeoutMs = -1;
  #paused = false;
  readonly #body: RequestBodyWriter;
  #dead = false;
  /** Requests completed on this connection. */
  served = 0;

  constructor(owner: ConnectionOwner, socket: Socket) {
    this.#owner = owner;
    this.socket = socket;
    this.#parser = new H1ResponseParser(this);
    this.#body = new RequestBodyWriter(socket, this);
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
    socket.on("timeout", this.#onTimeout);
    socket.on("drain", this.#onDrain);
  }

  get usable(): boolean {
    return !this.#dead && this.#handler === null && !this.socket.destroyed && this.socket.writable;
  }

  /** Cancels the current request (and the connection). Valid until the handler completes or fails. */
  readonly abort = (err?: Error): void => {
    if (this.#handler === null) return;
    this.#fail(err ?? new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", "request aborted"));
  };

  run(request: UpstreamRequest, handler: UpstreamHandler): void {
    this.#request = request;
    this.#handler = handler;
    if (!this.socket.writable) {
      // The upstream closed it between the pool's check and now: nothing is written, so say so.
      this.#fail(
        new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", "closed the connection before the request was sent", {
          requestSent: false,
        }),
      );
      return;
    }
    this.#parser.expect(request.method === "HEAD");
    this.#setTimeout(request.headersTimeout);
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }

    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    const h = request.headers;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    const body = request.body;
    if (body === null) {
      this.socket.write(`${head}\r\n`, "latin1");
      return;
    }
    const length = contentLengthOf(h);
    this.socket.write(length === -1 ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`, "latin1");
    this.#body.start(body, length);
  }

  /** Idle in the pool: close after `ms` without a request. */
  idle(ms: number): void {
    this.#request = null;
    this.#setTimeout(ms);
  }

  destroy(): void {
    if (!this.#dead) {
      this.#dead = true;
      this.#owner.remove(this);
    }
    this.#body.detach();
    this.socket.destroy();
  }

  // --- response (ResponseSink) ---

  // The handler may abort from inside any of these (the parser keeps going over the rest of the
  // chunk), so each checks that the request is still this connection's.

  onHead(status: number, headers: string[], statusText: string): void {
    const h = this.#handler;
    const req = this.#request;
    if (h === null || req === null) return;
    if (req.bodyTimeout !== req.headersTimeout) this.#setTimeout(req.bodyTimeout);
    if (!h.onHeaders(status, headers, this.#resume, statusText)) this.#pause();
  }

  onBody(chunk: Buffer): void {
    const h = this.#handler;
    if (h !== null && !h.onData(chunk)) this.#pause();
  }

  onEnd(trailers: string[] | null): void {
    const h = this.#handler;
    if (h === null) return;
    this.#handler = null;
    this.served++;
    // A request body still streaming, or a response that ends the connection: not reusable.
    const reusable = this.#parser.keepAlive && !this.#body.active && !this.#dead;
    if (!reusable) this.destroy();
    h.onComplete(trailers);
    if (!reusable) return;
    this.#resume(); // an idle connection keeps reading, so a close by the upstream is noticed
    this.#owner.release(this);
  }

  get keepAliveHintMs(): number {
    return this.#parser.keepAliveHintMs;
  }

  // --- internals ---

  readonly #resume = (): void => {
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
  };

  #pause(): void {
    if (!this.#paused) {
      this.#paused = true;
      this.socket.pause();
    }
  }

  #setTimeout(ms: number): void {
    if (ms !== this.#timeoutMs) {
      this.#timeoutMs = ms;
      this.socket.setTimeout(ms);
    }
  }

  #fail(err: Error): void {
    const h = this.#handler;
    const req = this.#request;
    this.#handler = null;
    this.destroy();
    if (h === null || req === null) return;
    h.onError(err);
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#handler === null) {
      this.destroy(); // bytes nobody asked for: the connection cannot be trusted any more
      return;
    }
    try {
      this.#parser.feed(chunk);
    } catch (err) {
      // Response complete, then garbage: just drop the connection. Errors that are not protocol
      // errors are bugs downstream of us (a handler threw): fail the request rather than the process.
      if (this.#handler === null) this.destroy();
      else if (err instanceof ProtocolError)
        this.#fail(new UpstreamError("WEFT_ERR_UPSTREAM_PROTOCOL", err.message));
      else this.#fail(err as Error);
    }
  };

  readonly #onEnd = (): void => {
    if (this.#handler === null) {
      this.destroy();
      return;
    }
    try {
      this.#parser.eof();
    } catch (err) {
      const what = this.#parser.received === 0 ? "before responding" : "mid-response";
      this.#fail(
        new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", `closed the connection ${what}`, { cause: err }),
      );
      return;
    }
    this.destroy();
  };

  readonly #onError = (err: Error): void => {
    if (err instanceof UpstreamError) this.#fail(err);
    else {
      // ECONNRESET, EPIPE, ...: after the request head was written, so it may have been received.
      const code = (err as { code?: string }).code ?? err.message;
      this.#fail(
        new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", `reset the connection (${code})`, { cause: err }),
      );
    }
  };

  readonly #onClose = (): void => {
    if (!this.#dead) {
      this.#dead = true;
      this.#owner.remove(this);
    }
    if (this.#handler !== null) {
      const what = this.#parser.received === 0 ? "before responding" : "mid-response";
      this.#fail(new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", `closed the connection ${what}`));
    }
  };

  readonly #onTimeout = (): void => {
    if (this.#handler === null) {
      this.destroy(); // idle timeout
      return;
    }
    this.#fail(
      this.#parser.received === 0
        ? new UpstreamError(
            "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT",
            `sent no response headers within ${this.#timeoutMs} ms`,
          )
        : new UpstreamError(
            "WEFT_ERR_UPSTREAM_BODY_TIMEOUT",
            `sent nothing for ${this.#timeoutMs} ms mid-response`,
          ),
    );
  };

  readonly #onDrain = (): void => {
    this.#body.onSocketDrain();
  };

  bodyFailed(err: Error): void {
    this.#fail(err);
  }
}
