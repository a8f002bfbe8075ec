// The HTTP/2 server edge shared by the listeners: a node:http2 server that is never listening
// itself — fronts hand it connections (the inbound TLS front after ALPN "h2", the outbound's h2c
// sniffer after the connection preface) — with limits against hostile clients: concurrent streams,
// header list size (16 KiB, as HTTP/1.1's head), invalid frames, refused streams, outstanding pings,
// session memory, and a cap on streams the client resets per second (CVE-2023-44487, "rapid reset":
// over it the session gets GOAWAY ENHANCE_YOUR_CALM and is closed). Each request stream goes to the
// listener's handler; a throw there fails one stream, never the process.

import type { RequestEvents } from "../pipeline/events.ts";
import http2 from "node:http2";
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { LocalReplies } from "./local-reply.ts";

export type H2StreamHandler = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  flags: number,
  rawHeaders: string[],
) => void;

export interface H2EdgeLimits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS per client connection. Default 128. */
  maxConcurrentStreams?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE (bytes). Default 16 KiB. */
  maxHeaderListSize?: number;
  /** Streams a client may reset per second before its connection is closed. Default 200. */
  maxResetsPerSecond?: number;
  /** Idle connection (no stream) timeout (ms). Default 65 s, as the HTTP/1.1 keep-alive. */
  idleTimeoutMs?: number;
  /** Clock for the reset rate (ms); injectable for tests. */
  now?: () => number;
}

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants;

interface SessionState {
  windowStart: number;
  resets: number;
}

const kState = Symbol("weft.h2state");
const kLocalReset = Symbol("weft.localReset");

/**
 * Resets a stream from the proxy's side (RST_STREAM INTERNAL_ERROR: a broken-off response, a bug),
 * at once — close(code) would end the response first, and a truncated body would look complete.
 * Not counted as the client's reset by the rapid-reset cap.
 */
export function resetStream(stream: ServerHttp2Stream): void {
  (stream as ServerHttp2Stream & { [kLocalReset]?: boolean })[kLocalReset] = true;
  if (!stream.destroyed) stream.destroy(new Error("reset by the proxy"));
}

type TrackedSession = ServerHttp2Session & { [kState]?: SessionState };

function ignoreError(): void {}

export class H2Edge {
  readonly server: Http2Server;
  readonly replies: LocalReplies;
  /** The listener's request events (../pipeline/events.ts), shared with its other edges. */
  readonly events: RequestEvents;
  draining = false;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #maxResets: number;
  readonly #now: () => number;
  /** Sessions closed for resetting too many streams (tests and metrics). */
  calmedDown = 0;

  constructor(
    opts: { replies: LocalReplies; events: RequestEvents; handler: H2StreamHandler } & H2EdgeLimits,
  ) {
    this.replies = opts.replies;
    this.events = opts.events;
    this.#maxResets = opts.maxResetsPerSecond ?? 200;
    this.#now = opts.now ?? (() => performance.now());
    this.server = http2.createServer({
      settings: {
        maxConcurrentStreams: opts.maxConcurrentStreams ?? 128,
        maxHeaderListSize: opts.maxHeaderListSize ?? 16 * 1024,
        enablePush: false,
      },
      maxHeaderListPairs: 256,
      // Frames nghttp2 finds invalid, and streams it refuses, before the session is cut.
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
      maxOutstandingPings: 10,
      maxSettings: 32,
      maxSessionMemory: 10,
      // Not an HTTP/2 client (no preface within this time): drop it.
      unknownProtocolTimeout: 10_000,
    });
    const idleMs = opts.idleTimeoutMs ?? 65_000;
    this.server.on("session", (session: ServerHttp2Session) => {
      this.#sessions.add(session);
      session.on("error", ignoreError);
      session.once("close", () => this.#sessions.delete(session));
      session.setTimeout(idleMs, () => session.close());
      if (this.draining) session.goaway(NGHTTP2_NO_ERROR);
    });
    this.server.on("sessionError", ignoreError);
    const handler = opts.handler;
    this.server.on("stream", (stream: ServerHttp2Stream, headers, flags, raw: string[]) => {
      stream.on("error", ignoreError);
      // 'aborted': the stream closed while its response was unfinished — the client's reset, unless
      // the proxy reset it itself (resetStream).
      stream.once("aborted", () => {
        if ((stream as ServerHttp2Stream & { [kLocalReset]?: boolean })[kLocalReset] !== true)
          this.#onReset(stream.session as TrackedSession);
      });
      try {
        handler(stream, headers, flags, raw);
      } catch (err) {
        process.emitWarning(err as Error, { code: "WEFT_PROXY_BUG" });
        resetStream(stream);
      }
    });
  }

  /** A connection whose first bytes are the h2 preface (or that negotiated "h2" by ALPN). */
  accept(socket: Socket): void {
    this.server.emit("connection", socket);
  }

  /** The client reset a stream before its response finished: counted per session per second. */
  #onReset(session: TrackedSession | undefined): void {
    if (session === undefined || session.destroyed) return;
    const now = this.#now();
    const st = (session[kState] ??= { windowStart: now, resets: 0 });
    if (now - st.windowStart >= 1_000) {
      st.windowStart = now;
      st.resets = 0;
    }
    if (++st.resets <= this.#maxResets) return;
    this.calmedDown++;
    session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
    session.destroy();
  }

  /** Draining: GOAWAY to every client (in-flight streams finish), idle sessions close. */
  closeIdleConnections(): void {
    for (const s of this.#sessions) {
      if (!s.closed) s.close();
    }
  }

  closeAllConnections(): void {
    for (const s of this.#sessions) s.destroy();
  }

  get sessions(): number {
    return this.#sessions.size;
  }
}
