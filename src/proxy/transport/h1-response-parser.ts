// Incremental HTTP/1.1 response parser for weft's upstream connections. Strict where framing is at
// stake (RFC 9112 §6): Content-Length digits only and never two different values; Transfer-Encoding
// only "chunked" and never together with Content-Length; chunk sizes hex, CRLF everywhere; no
// obs-fold. Anything else is a protocol error and the connection is not reused. Header values are
// not validated here: Node validates them when the proxy writes them to the client.

export interface ResponseSink {
  onHead(status: number, headers: string[], statusText: string): void;
  onBody(chunk: Buffer): void;
  onEnd(trailers: string[] | null): void;
}

export class ProtocolError extends Error {}

const HEAD = 0;
const BODY_LENGTH = 1;
const CHUNK_SIZE = 2;
const CHUNK_DATA = 3;
const CHUNK_DATA_CRLF = 4;
const TRAILERS = 5;
const BODY_UNTIL_CLOSE = 6;
const DONE = 7;

const MAX_HEAD = 64 * 1024;
const MAX_LINE = 4 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;
const DIGITS = /^\d{1,15}$/;
const HEX = /^[0-9A-Fa-f]{1,13}$/;
const CRLFCRLF = Buffer.from("\r\n\r\n");

export class H1ResponseParser {
  readonly #sink: ResponseSink;
  #state = DONE;
  #noBody = false;
  #head: Buffer | null = null;
  #remaining = 0;
  #line = "";
  #trailers: string[] | null = null;
  /** After a complete head: may the connection carry another request? */
  keepAlive = false;
  /** The upstream's Keep-Alive: timeout=N hint (ms), or 0. */
  keepAliveHintMs = 0;
  /** Bytes received for the current response (0 means the upstream sent nothing yet). */
  received = 0;

  constructor(sink: ResponseSink) {
    this.#sink = sink;
  }

  /** Prepares for the response to a new request; HEAD responses have no body. */
  expect(isHead: boolean): void {
    this.#state = HEAD;
    this.#noBody = isHead;
    this.#head = null;
    this.#line = "";
    this.#trailers = null;
    this.keepAlive = false;
    this.keepAliveHintMs = 0;
    this.received = 0;
  }

  get done(): boolean {
    return this.#state === DONE;
  }

  /** Whether the response so far is delimited by the connection closing. */
  get untilClose(): boolean {
    return this.#state === BODY_UNTIL_CLOSE;
  }

  /** Feeds bytes; throws ProtocolError. Bytes after the end of the response are a protocol error. */
  feed(chunk: Buffer): void {
    this.received += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      switch (this.#state) {
        case HEAD:
          i = this.#feedHead(chunk, i);
          break;
        case BODY_LENGTH: {
          const n = Math.min(this.#remaining, chunk.length - i);
          this.#remaining -= n;
          const piece = i === 0 && n === chunk.length ? chunk : chunk.subarray(i, i + n);
          i += n;
          if (this.#remaining === 0) this.#state = DONE;
          this.#sink.onBody(piece);
          if (this.#state === DONE) this.#sink.onEnd(null);
          break;
        }
        case CHUNK_SIZE:
        case CHUNK_DATA_CRLF:
        case TRAILERS:
          i = this.#feedLine(chunk, i);
          break;
        case CHUNK_DATA: {
          const n = Math.min(this.#remaining, chunk.length - i);
          this.#remaining -= n;
          const piece = chunk.subarray(i, i + n);
          i += n;
          if (this.#remaining === 0) this.#state = CHUNK_DATA_CRLF;
          this.#sink.onBody(piece);
          break;
        }
        case BODY_UNTIL_CLOSE:
          this.#sink.onBody(i === 0 ? chunk : chunk.subarray(i));
          i = chunk.length;
          break;
        default:
          throw new ProtocolError("upstream sent bytes after the end of its response");
      }
    }
  }

  /** The upstream closed its side. Ends a close-delimited body; anything else unfinished is an error. */
  eof(): void {
    if (this.#state === BODY_UNTIL_CLOSE) {
      this.#state = DONE;
      this.#sink.onEnd(null);
      return;
    }
    if (this.#state !== DONE) throw new ProtocolError("upstream closed the connection mid-response");
  }

  #feedHead(chunk: Buffer, start: number): number {
    let buf = start === 0 ? chunk : chunk.subarray(start);
    let searchFrom = 0;
    if (this.#head !== null) {
      searchFrom = Math.max(0, this.#head.length - 3);
      buf = Buffer.concat([this.#head, buf]);
    }
    const end = buf.indexOf(CRLFCRLF, searchFrom);
    if (end === -1) {
      if (buf.length > MAX_HEAD) throw new ProtocolError("upstream response head too large");
      this.#head = buf;
      return chunk.length;
    }
    const consumedBefore = this.#head === null ? 0 : this.#head.length;
    this.#head = null;
    this.#parseHead(buf.toString("latin1", 0, end));
    return start + (end + 4 - consumedBefore);
  }

  #parseHead(text: string): void {
    const lines = text.split("\r\n");
    const m = STATUS_LINE.exec(lines[0]);
    if (m === null) throw new ProtocolError("malformed upstream status line");
    const status = Number(m[2]);
    const http10 = m[1] === "0";
    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let close = http10;
    for (let k = 1; k < lines.length; k++) {
      const line = lines[k];
      const colon = line.indexOf(":");
      if (colon <= 0) throw new ProtocolError("malformed upstream header line");
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      if (!TOKEN.test(name)) throw new ProtocolError("malformed upstream header name");
      switch (name.length) {
        case 10:
          if (name.toLowerCase() === "connection") {
            const v = value.toLowerCase();
            if (v.includes("close")) close = true;
            else if (http10 && v.includes("keep-alive")) close = false;
          } else if (name.toLowerCase() === "keep-alive") {
            const t = /timeout=(\d+)/i.exec(value);
            if (t) this.keepAliveHintMs = Number(t[1]) * 1000;
          }
          break;
        case 14:
          if (name.toLowerCase() === "content-length") {
            if (!DIGITS.test(value)) throw new ProtocolError("invalid upstream Content-Length");
            const n = Number(value);
            if (contentLength !== -1 && contentLength !== n)
              throw new ProtocolError("conflicting upstream Content-Length");
            contentLength = n;
          }
          break;
        case 17:
          if (name.toLowerCase() === "transfer-encoding") {
            if (chunked || value.toLowerCase() !== "chunked") {
              throw new ProtocolError(`unsupported upstream Transfer-Encoding ${JSON.stringify(value)}`);
            }
            chunked = true;
          }
          break;
      }
      headers.push(name, value);
    }

    if (status < 200) {
      // 1xx informational (100 Continue, 103 Early Hints): skip; the final response follows.
      if (status === 101) throw new ProtocolError("upstream switched protocols, which was not asked for");
      return;
    }
    if (chunked && contentLength !== -1)
      throw new ProtocolError("upstream sent both Content-Length and Transfer-Encoding");
    this.keepAlive = !close;
    if (this.#noBody || status === 204 || status === 304) this.#state = DONE;
    else if (chunked) this.#state = CHUNK_SIZE;
    else if (contentLength >= 0) {
      this.#remaining = contentLength;
      this.#state = contentLength === 0 ? DONE : BODY_LENGTH;
    } else {
      this.#state = BODY_UNTIL_CLOSE;
      this.keepAlive = false;
    }
    this.#sink.onHead(status, headers, m[3] ?? "");
    if (this.#state === DONE) this.#sink.onEnd(null);
  }

  #feedLine(chunk: Buffer, start: number): number {
    const lf = chunk.indexOf(10, start);
    const end = lf === -1 ? chunk.length : lf + 1;
    this.#line += chunk.toString("latin1", start, end);
    if (lf === -1) {
      if (this.#line.length > MAX_LINE) throw new ProtocolError("upstream chunk framing line too long");
      return end;
    }
    const line = this.#line;
    this.#line = "";
    if (line.length < 2 || line.charCodeAt(line.length - 2) !== 13)
      throw new ProtocolError("bare LF in upstream chunked body");
    const content = line.slice(0, -2);
    switch (this.#state) {
      case CHUNK_SIZE: {
        const semi = content.indexOf(";");
        const size = (semi === -1 ? content : content.slice(0, semi)).trimEnd();
        if (!HEX.test(size)) throw new ProtocolError("invalid upstream chunk size");
        this.#remaining = parseInt(size, 16);
        this.#state = this.#remaining === 0 ? TRAILERS : CHUNK_DATA;
        break;
      }
      case CHUNK_DATA_CRLF:
        if (content !== "") throw new ProtocolError("upstream chunk longer than its size");
        this.#state = CHUNK_SIZE;
        break;
      case TRAILERS: {
        if (content === "") {
          this.#state = DONE;
          this.#sink.onEnd(this.#trailers);
          break;
        }
        const colon = content.indexOf(":");
        const name = colon > 0 ? content.slice(0, colon) : "";
        if (!TOKEN.test(name)) throw new ProtocolError("malformed upstream trailer");
        (this.#trailers ??= []).push(name, content.slice(colon + 1).trim());
        break;
      }
    }
    return end;
  }
}
