// The HTTP/2 edge's side of an exchange: the request record read from a stream's header block
// (pseudo-headers → method, target and Host; the rest through the same header scan as HTTP/1.1),
// and the Downstream contract (../pipeline/downstream.ts) written on its ServerHttp2Stream. The
// response head is converted back to an h2 header block (connection-specific headers dropped);
// trailers are sent when the request may take them (gRPC, or `te: trailers`); a broken-off response
// resets only its own stream (RST_STREAM INTERNAL_ERROR). Listeners are module-level functions.

import type { RequestEvents } from "../pipeline/events.ts";
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { LocalReply } from "../errors.ts";
import type { StatsByCode } from "../metrics/registry.ts";
import { Exchange } from "../pipeline/exchange.ts";
import { h2RequestToH1, isConnectionSpecific } from "../transport/h2-headers.ts";
import { resetStream } from "./h2-edge.ts";
import { noteGrpcReplyStatus, type LocalReplies } from "./local-reply.ts";
import { scanRequestHeaders } from "./request-head.ts";
import { noteTrailerStatus } from "./response-head.ts";

/** The END_STREAM flag of a HEADERS frame (RFC 9113 §6.2): the request has no body. */
const FLAG_END_STREAM = 0x1;
const MAX_DETAIL = 1024;

const kExchange = Symbol("weft.h2exchange");
type TaggedStream = ServerHttp2Stream & { [kExchange]?: H2Exchange };

function onStreamClose(this: TaggedStream): void {
  this[kExchange]?.clientGone();
}

function onStreamDrain(this: TaggedStream): void {
  this[kExchange]?.resumeUpstream();
}

function onWantTrailers(this: TaggedStream): void {
  const x = this[kExchange];
  this.sendTrailers(x === undefined ? {} : x.pendingTrailers());
}

/** A flat header list → an h2 header object: lowercase names, arrays for repeats, no hop-by-hop. */
export function toH2Headers(
  list: readonly (Buffer | string)[],
  into: OutgoingHttpHeaders,
): OutgoingHttpHeaders {
  for (let i = 0; i < list.length; i += 2) {
    const name = String(list[i]).toLowerCase();
    const value = String(list[i + 1]);
    if (name.charCodeAt(0) === 58 /* : */ || isConnectionSpecific(name, value)) continue;
    const prev = into[name];
    if (prev === undefined) into[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else into[name] = [String(prev), value];
  }
  return into;
}

export interface H2EdgeFacts {
  readonly replies: LocalReplies;
  readonly events: RequestEvents;
  readonly draining: boolean;
}

export class H2Exchange extends Exchange {
  readonly stream: ServerHttp2Stream;
  readonly edge: H2EdgeFacts;
  readonly #h: IncomingHttpHeaders;
  readonly #raw: string[];
  readonly #endStream: boolean;
  #trailers: (Buffer | string)[] | null = null;
  #wantTrailers = false;
  #drainHooked = false;
  #watching = false;

  constructor(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    flags: number,
    raw: string[],
    edge: H2EdgeFacts,
    scheme: "http" | "https",
    stats: StatsByCode,
  ) {
    super(String(headers[":method"] ?? ""), scheme, stats, edge.events);
    this.stream = stream;
    this.edge = edge;
    this.#h = headers;
    this.#raw = raw;
    this.#endStream = (flags & FLAG_END_STREAM) !== 0;
    this.clientAddress = stream.session?.socket?.remoteAddress;
  }

  /** Reads the request record; refuses (and answers) what cannot be forwarded. */
  readRequest(): boolean {
    const method = this.method;
    if (method === "CONNECT") {
      this.reply("unsupported", "CONNECT over HTTP/2 is not supported on this listener");
      return false;
    }
    const head = h2RequestToH1(this.#raw);
    if (head.path === "" || (head.path.charCodeAt(0) !== 47 /* / */ && head.path !== "*")) {
      this.reply("bad_request", "missing or malformed :path");
      return false;
    }
    if (head.headers[0] !== "host" || head.headers[1] === "") {
      this.reply("bad_request", "missing :authority");
      return false;
    }
    this.target = head.path;
    scanRequestHeaders(head.headers, this.headers, this);
    if (!this.#endStream) {
      this.hasBody = true;
      this.body = this.stream;
    }
    this.#wantTrailers = this.grpc || this.headers.includes("te");
    return true;
  }

  header(name: string): string | undefined {
    if (name === "host") return this.host;
    const v = this.#h[name];
    return Array.isArray(v) ? v.join(",") : v;
  }

  /** The trailers given to end(), as an h2 header object (asked for by 'wantTrailers'). */
  pendingTrailers(): OutgoingHttpHeaders {
    return this.#trailers === null ? {} : toH2Headers(this.#trailers, {});
  }

  // --- Downstream ---

  get draining(): boolean {
    return this.edge.draining;
  }

  sendHead(status: number, headers: string[], endStream = false): boolean {
    const s = this.stream;
    if (s.destroyed || s.headersSent) return false;
    // A head that ended the upstream's response (gRPC trailers-only) ends this one too: one HEADERS
    // frame with END_STREAM, as gRPC clients expect, rather than a head and empty trailers.
    const trailers = this.#wantTrailers && !endStream;
    try {
      s.respond(toH2Headers(headers, { ":status": status }), { waitForTrailers: trailers, endStream });
    } catch {
      return false; // a header value node:http2 refuses: nothing was sent
    }
    if (trailers) {
      (s as TaggedStream)[kExchange] = this;
      s.once("wantTrailers", onWantTrailers);
    }
    return true;
  }

  write(chunk: Buffer): boolean {
    const s = this.stream;
    if (s.destroyed || s.writableEnded) return true;
    if (s.write(chunk)) return true;
    if (!this.#drainHooked) {
      this.#drainHooked = true;
      (s as TaggedStream)[kExchange] = this;
      s.on("drain", onStreamDrain);
    }
    return false;
  }

  end(trailers: (Buffer | string)[] | null): void {
    const s = this.stream;
    this.#trailers = trailers;
    if (trailers !== null) noteTrailerStatus(trailers, this);
    if (!s.destroyed && !s.writableEnded) s.end();
  }

  abort(): void {
    resetStream(this.stream);
  }

  sendLocalReply(reply: LocalReply, _close: boolean, extra: string[] | undefined): number {
    const s = this.stream;
    const replies = this.edge.replies;
    replies.count(reply.code);
    if (s.headersSent || s.destroyed) {
      this.abort();
      return reply.status;
    }
    let status = reply.status;
    let list: string[];
    let body: string | undefined;
    if (this.grpc && replies.grpcShape !== undefined) {
      status = 200;
      list = replies.grpcShape(reply);
      noteGrpcReplyStatus(list, this);
    } else {
      const d = reply.detail.length > MAX_DETAIL ? `${reply.detail.slice(0, MAX_DETAIL)}…` : reply.detail;
      body = `${reply.code}: ${d.replace(/[\r\n]+/g, " ")}\n`;
      list = [
        "x-weft-error",
        reply.code,
        "content-type",
        "text/plain; charset=utf-8",
        "content-length",
        String(Buffer.byteLength(body)),
      ];
    }
    if (extra !== undefined) for (const x of extra) list.push(x);
    try {
      s.respond(toH2Headers(list, { ":status": status }), { endStream: body === undefined });
      if (body !== undefined) s.end(body);
    } catch {
      this.abort();
    }
    this.discardBody();
    return status;
  }

  watchClient(): void {
    if (this.#watching) return;
    this.#watching = true;
    const s = this.stream as TaggedStream;
    s[kExchange] = this;
    s.on("close", onStreamClose);
  }

  discardBody(): void {
    const s = this.stream;
    if (!this.#endStream && !s.readableEnded) s.resume();
  }

  clientOpen(): boolean {
    const s = this.stream;
    return !s.destroyed && !s.closed;
  }

  closeAfterResponse(): void {
    // Streams multiplex: one response never ends the connection (a draining edge sends GOAWAY).
  }
}
