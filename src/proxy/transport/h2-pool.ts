// weft's HTTP/2 pool for one upstream endpoint: the same UpstreamDispatcher contract as the HTTP/1.1
// pool (upstream.ts), over multiplexed node:http2 client sessions (h2-session.ts). Normally one
// session carries every request; a second opens only when every session is at the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS (or draining after a GOAWAY), up to maxSessions. Beyond that,
// requests wait in a bounded FIFO queue; a request that finds the queue full is refused at once
// (WEFT_ERR_CIRCUIT_OPEN, requestSent = false). Like the HTTP/1.1 pool it never re-sends a request:
// failures say whether the request may have reached the upstream (h2-stream.ts), the caller decides.

import type { Socket } from "node:net";
import type { Connector } from "./connector.ts";
import { H2Session, type SessionOwner } from "./h2-session.ts";
import {
  requestNotSent,
  UpstreamError,
  type UpstreamDispatcher,
  type UpstreamHandler,
  type UpstreamRequest,
} from "./upstream.ts";

export interface H2PoolOptions {
  scheme: "http" | "https";
  /** "host:port": :authority for requests without Host. */
  authority: string;
  /** Close a session after this long without streams (ms); 0 = never. Default 10 min. */
  idleTimeoutMs?: number;
  /** Sessions at most (a new one opens only when the others are full). Default 4. */
  maxSessions?: number;
  /** Requests waiting for a stream at most. Default 1024. */
  maxPending?: number;
  /**
   * Checks a freshly connected socket before a session starts on it (ALPN must be "h2" on mesh
   * mTLS); an error fails the waiting requests as not sent.
   */
  accept?: (socket: Socket) => Error | undefined;
}

interface Waiter {
  request: UpstreamRequest;
  handler: UpstreamHandler;
  cancelled: boolean;
}

const DEFAULT_MAX_SESSIONS = 4;
const DEFAULT_MAX_PENDING = 1024;
const DEFAULT_IDLE_MS = 600_000;

export class H2Pool implements UpstreamDispatcher, SessionOwner {
  readonly #connect: Connector;
  readonly #opts: H2PoolOptions;
  readonly #sessions: H2Session[] = [];
  readonly #waiting: Waiter[] = [];
  #connecting = 0;
  #maxSessions: number;
  #maxPending: number;
  #maxInFlight = Number.POSITIVE_INFINITY;
  #closed = false;
  #drained: (() => void) | undefined;
  /** Sessions opened since the pool was created (tests and /clusters). */
  opened = 0;

  constructor(connect: Connector, opts: H2PoolOptions) {
    this.#connect = connect;
    this.#opts = opts;
    this.#maxSessions = opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.#maxPending = opts.maxPending ?? DEFAULT_MAX_PENDING;
  }

  get sessions(): number {
    return this.#sessions.length;
  }

  get pending(): number {
    return this.#waiting.length;
  }

  /**
   * Circuit-breaker limits. maxConnections > 0 bounds the requests in flight to the endpoint (over
   * one session), as it does over HTTP/1.1 where a connection carries one request at a time — the
   * limit users set keeps protecting the app whatever the sidecars speak; beyond it requests wait in
   * the queue bounded by maxPendingRequests (0 = the default).
   */
  setLimits(maxConnections: number, maxPendingRequests: number): void {
    this.#maxInFlight = maxConnections > 0 ? maxConnections : Number.POSITIVE_INFINITY;
    this.#maxSessions = maxConnections > 0 ? 1 : (this.#opts.maxSessions ?? DEFAULT_MAX_SESSIONS);
    this.#maxPending =
      maxPendingRequests > 0 ? maxPendingRequests : (this.#opts.maxPending ?? DEFAULT_MAX_PENDING);
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): boolean {
    if (this.#closed) {
      handler.onError(
        new UpstreamError("WEFT_ERR_POOL_CLOSED", "the endpoint's connection pool is closed", {
          requestSent: false,
        }),
      );
      return false;
    }
    if (this.#waiting.length === 0) {
      const s = this.#free();
      if (s !== undefined) {
        s.run(request, handler);
        return true;
      }
    }
    // Requests waiting only for a session to finish connecting are not "pending": the session takes
    // up to the in-flight limit (or its first 100 streams) of them as soon as it is up.
    if (this.#waiting.length >= this.#maxPending + this.#headroom()) {
      handler.onError(
        new UpstreamError(
          "WEFT_ERR_CIRCUIT_OPEN",
          `every HTTP/2 stream busy and ${this.#waiting.length} requests already waiting`,
          { requestSent: false },
        ),
      );
      return false;
    }
    const w: Waiter = { request, handler, cancelled: false };
    this.#waiting.push(w);
    handler.onConnect((err?: Error) => {
      if (w.cancelled) return;
      w.cancelled = true;
      const i = this.#waiting.indexOf(w);
      if (i !== -1) this.#waiting.splice(i, 1);
      handler.onError(err ?? new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", "request aborted"));
    });
    this.#grow();
    return true;
  }

  #headroom(): number {
    let active = 0;
    for (const s of this.#sessions) {
      if (s.ready) return 0; // a session is up: what waits, waits for a stream
      active += s.active;
    }
    return Math.max(0, Math.min(this.#maxInFlight, 100) - active);
  }

  /** The session with room for a stream, preferring the first (so one session carries the load). */
  #free(): H2Session | undefined {
    if (this.#maxInFlight !== Number.POSITIVE_INFINITY) {
      let active = 0;
      for (const s of this.#sessions) active += s.active;
      if (active >= this.#maxInFlight) return undefined;
    }
    for (const s of this.#sessions) if (s.capacity > 0) return s;
    return undefined;
  }

  /** Opens a session when requests wait and no session (open or connecting) can take them. */
  #grow(): void {
    if (this.#closed || this.#waiting.length === 0 || this.#connecting > 0) return;
    let usable = 0;
    for (const s of this.#sessions) {
      if (!s.usable) continue;
      if (!s.ready) return; // still exchanging SETTINGS: it will take what waits
      usable++;
    }
    if (usable + this.#connecting >= this.#maxSessions) return;
    this.#connecting++;
    this.#connect({}, (err: Error | null, socket: Socket | null) => {
      this.#connecting--;
      const refused = err ?? (socket === null ? new Error("no socket") : this.#opts.accept?.(socket));
      if (refused !== undefined && refused !== null) {
        socket?.destroy();
        this.#failWaiting(
          requestNotSent(refused)
            ? refused
            : new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", `connect failed: ${refused.message}`, {
                cause: refused,
                requestSent: false,
              }),
        );
        this.#checkDrained();
        return;
      }
      if (this.#closed) {
        (socket as Socket).destroy();
        this.#checkDrained();
        return;
      }
      this.opened++;
      this.#sessions.push(
        new H2Session(this, socket as Socket, {
          scheme: this.#opts.scheme,
          authority: this.#opts.authority,
          idleTimeoutMs: this.#opts.idleTimeoutMs ?? DEFAULT_IDLE_MS,
        }),
      );
    });
  }

  /** Hands waiting requests to sessions with room; opens another session when all are full. */
  #admit(): void {
    while (this.#waiting.length > 0) {
      const s = this.#free();
      if (s === undefined) break;
      const w = this.#waiting.shift() as Waiter;
      if (w.cancelled) continue;
      w.cancelled = true; // the stream's abort takes over (H2Stream calls onConnect again)
      s.run(w.request, w.handler);
    }
    this.#grow();
  }

  // --- SessionOwner ---

  sessionReady(): void {
    this.#admit();
  }

  sessionFreed(): void {
    if (this.#waiting.length > 0) this.#admit();
    else this.#checkDrained();
  }

  sessionClosed(s: H2Session): void {
    if (s.closed) {
      const i = this.#sessions.indexOf(s);
      if (i !== -1) this.#sessions.splice(i, 1);
      // Closed before its SETTINGS exchange: not an h2 server (or it refused us). Fail what waits
      // rather than opening session after session.
      if (!s.ready)
        this.#failWaiting(
          new UpstreamError(
            "WEFT_ERR_UPSTREAM_PROTOCOL",
            "closed the HTTP/2 session before it was established",
            {
              requestSent: false,
            },
          ),
        );
    }
    if (this.#waiting.length > 0) this.#admit();
    this.#checkDrained();
  }

  // --- closing ---

  /** Lets in-flight streams finish, refuses new requests, then closes the sessions. */
  close(): Promise<void> {
    this.#closed = true;
    this.#failWaiting(
      new UpstreamError("WEFT_ERR_POOL_CLOSED", "the endpoint's connection pool closed", {
        requestSent: false,
      }),
    );
    for (const s of this.#sessions) s.close();
    if (this.#live() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = resolve;
      this.#checkDrained();
    });
  }

  destroy(): Promise<void> {
    this.#closed = true;
    this.#failWaiting(
      new UpstreamError("WEFT_ERR_POOL_CLOSED", "the endpoint's connection pool closed", {
        requestSent: false,
      }),
    );
    for (const s of [...this.#sessions]) s.destroy();
    this.#sessions.length = 0;
    this.#checkDrained();
    return Promise.resolve();
  }

  #live(): number {
    let n = this.#connecting;
    for (const s of this.#sessions) if (!s.session.destroyed) n++;
    return n;
  }

  #failWaiting(err: Error): void {
    for (const w of this.#waiting.splice(0)) {
      if (w.cancelled) continue;
      w.cancelled = true;
      w.handler.onError(err);
    }
  }

  #checkDrained(): void {
    if (this.#drained === undefined) return;
    let busy = this.#connecting;
    for (const s of this.#sessions) {
      if (s.active > 0) busy++;
      else s.close();
    }
    if (busy > 0) return;
    const d = this.#drained;
    this.#drained = undefined;
    d();
  }
}
