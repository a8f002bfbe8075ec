// Streams a client's request body onto an upstream connection: as-is when it has a Content-Length,
// chunk-encoded otherwise, with backpressure (the client's stream pauses while the socket is full).
// One writer per connection; its listeners are bound once and attached per request with a body.

import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { UpstreamError } from "./upstream.ts";

export interface BodyOwner {
  /** The body could not be sent whole: the client failed or sent less than its Content-Length. */
  bodyFailed(err: Error): void;
}

/** The request's Content-Length, or -1 when it has none (the body then goes chunked). */
export function contentLengthOf(headers: string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length === 14 && headers[i].toLowerCase() === "content-length")
      return Number(headers[i + 1]);
  }
  return -1;
}

export class RequestBodyWriter {
  readonly #socket: Socket;
  readonly #owner: BodyOwner;
  #body: Readable | null = null;
  #remaining = -1;
  #chunked = false;
  #paused = false;

  constructor(socket: Socket, owner: BodyOwner) {
    this.#socket = socket;
    this.#owner = owner;
  }

  /** A body is still being sent. */
  get active(): boolean {
    return this.#body !== null;
  }

  /** Starts streaming `body`; the request head (with `transfer-encoding: chunked` when -1) is already written. */
  start(body: Readable, contentLength: number): void {
    this.#body = body;
    this.#remaining = contentLength;
    this.#chunked = contentLength === -1;
    body.on("data", this.#onData);
    body.on("end", this.#onEnd);
    body.on("error", this.#onError);
    body.on("aborted", this.#onAborted);
  }

  /** The socket drained: let the client's body flow again. */
  onSocketDrain(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#body?.resume();
    }
  }

  detach(): void {
    const b = this.#body;
    if (b === null) return;
    this.#body = null;
    this.#paused = false;
    b.removeListener("data", this.#onData);
    b.removeListener("end", this.#onEnd);
    b.removeListener("error", this.#onError);
    b.removeListener("aborted", this.#onAborted);
  }

  readonly #onData = (chunk: Buffer): void => {
    const s = this.#socket;
    let ok: boolean;
    if (this.#chunked) {
      s.cork();
      s.write(`${chunk.length.toString(16)}\r\n`, "latin1");
      s.write(chunk);
      ok = s.write("\r\n", "latin1");
      s.uncork();
    } else {
      this.#remaining -= chunk.length;
      ok = s.write(chunk);
    }
    if (!ok && !this.#paused) {
      this.#paused = true;
      this.#body?.pause();
    }
  };

  readonly #onEnd = (): void => {
    const short = !this.#chunked && this.#remaining !== 0;
    if (this.#chunked) this.#socket.write("0\r\n\r\n", "latin1");
    this.detach();
    if (short)
      this.#owner.bodyFailed(
        new UpstreamError("WEFT_ERR_REQUEST_BODY", "request body shorter than its Content-Length"),
      );
  };

  readonly #onError = (err: Error): void => {
    this.#owner.bodyFailed(
      new UpstreamError("WEFT_ERR_REQUEST_BODY", "client request body failed", { cause: err }),
    );
  };

  readonly #onAborted = (): void => {
    this.#onError(new Error("client aborted the request"));
  };
}
