// One HTTP/2 client session to an upstream endpoint over a socket the connector opened (plaintext
// h2c with prior knowledge, or mesh mTLS that negotiated "h2" by ALPN). It carries up to the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS requests at once (h2-stream.ts runs each one); the pool
// (h2-pool.ts) asks `capacity` before giving it another. A GOAWAY makes it stop taking requests:
// the streams the peer will still process finish, the others fail as not sent (they may go
// elsewhere), and the pool opens a new session for what comes next. Idle sessions close after the
// pool's idle timeout. Server push is refused (SETTINGS_ENABLE_PUSH = 0).

import http2 from "node:http2";
import type { ClientHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import { H2Stream, type StreamOwner } from "./h2-stream.ts";
import type { UpstreamHandler, UpstreamRequest } from "./upstream.ts";

/** Streams assumed allowed until the peer's first SETTINGS frame says otherwise (RFC 9113 suggests ≥ 100). */
const INITIAL_PEER_STREAMS = 100;
/** Largest response header list accepted from an upstream (as the HTTP/1.1 parser's 64 KiB head). */
const MAX_RESPONSE_HEADER_LIST = 64 * 1024;

export interface SessionOwner {
  sessionReady(s: H2Session): void;
  sessionFreed(s: H2Session): void;
  sessionClosed(s: H2Session): void;
}

export interface H2SessionOptions {
  scheme: "http" | "https";
  /** :authority for requests without Host, and the session's origin. */
  authority: string;
  /** Close the session after this long with no stream (ms); 0 = never. */
  idleTimeoutMs: number;
}

export class H2Session implements StreamOwner {
  readonly session: ClientHttp2Session;
  readonly scheme: "http" | "https";
  readonly authority: string;
  goawayLastStreamId: number | undefined;
  /** Streams open now (including ones whose HEADERS are queued in nghttp2). */
  active = 0;
  #maxStreams = INITIAL_PEER_STREAMS;
  #ready = false;
  #closed = false;
  readonly #owner: SessionOwner;
  readonly #idleMs: number;

  constructor(owner: SessionOwner, socket: Socket, opts: H2SessionOptions) {
    this.#owner = owner;
    this.scheme = opts.scheme;
    this.authority = opts.authority;
    this.#idleMs = opts.idleTimeoutMs;
    this.session = http2.connect(`${opts.scheme}://${opts.authority}`, {
      createConnection: () => socket,
      settings: { enablePush: false, maxHeaderListSize: MAX_RESPONSE_HEADER_LIST },
      maxHeaderListPairs: 256,
      maxReservedRemoteStreams: 0,
      peerMaxConcurrentStreams: INITIAL_PEER_STREAMS,
      // Bounded per session; nghttp2 refuses new streams beyond it rather than buffering without end.
      maxSessionMemory: 32,
    });
    const s = this.session;
    s.on("connect", this.#onConnect);
    s.on("remoteSettings", this.#onSettings);
    s.on("goaway", this.#onGoaway);
    s.on("error", ignoreError); // streams get their own errors; 'close' follows
    s.on("close", this.#onClose);
    s.on("timeout", this.#onIdle);
    if (this.#idleMs > 0) s.setTimeout(this.#idleMs);
  }

  /** Streams this session may still open now (0 while connecting, closing or full). */
  get capacity(): number {
    if (!this.#ready || this.#closed || this.goawayLastStreamId !== undefined) return 0;
    return Math.max(0, this.#maxStreams - this.active);
  }

  /** The SETTINGS exchange completed. */
  get ready(): boolean {
    return this.#ready;
  }

  /** The session has ended (its socket is gone). */
  get closed(): boolean {
    return this.#closed;
  }

  get usable(): boolean {
    return !this.#closed && this.goawayLastStreamId === undefined;
  }

  run(request: UpstreamRequest, handler: UpstreamHandler): void {
    this.active++;
    new H2Stream(this, request, handler).start();
  }

  streamDone(): void {
    this.active--;
    if (!this.#closed) this.#owner.sessionFreed(this);
  }

  /** No new streams; the session ends once its streams are done (GOAWAY to the peer). */
  close(): void {
    if (this.#closed) return;
    this.goawayLastStreamId ??= Number.MAX_SAFE_INTEGER;
    if (!this.session.closed) this.session.close();
  }

  destroy(): void {
    this.session.destroy();
  }

  readonly #onConnect = (): void => {
    this.#ready = true;
    this.#owner.sessionReady(this);
  };

  readonly #onSettings = (settings: http2.Settings): void => {
    const max = settings.maxConcurrentStreams;
    // Node reports 2^32-1 when the peer sets no limit; cap at what the pool would use anyway.
    if (max !== undefined) this.#maxStreams = Math.min(max, 1000);
    if (this.#ready) this.#owner.sessionFreed(this);
  };

  readonly #onGoaway = (_code: number, lastStreamId: number): void => {
    this.goawayLastStreamId = lastStreamId;
    // Our own GOAWAY in answer lets the session end once the peer's kept streams are done.
    if (!this.session.closed) this.session.close();
    this.#owner.sessionClosed(this);
  };

  readonly #onIdle = (): void => {
    if (this.active === 0) this.close();
  };

  readonly #onClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.#owner.sessionClosed(this);
  };
}

function ignoreError(): void {}
