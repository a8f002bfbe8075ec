// weft's HTTP/1.1 connection pool for one upstream endpoint: idle keep-alive connections are
// reused most-recently-used first; a request that finds none opens a new one — unless the circuit
// breaker's maxConnections is reached, when it waits (FIFO) for a connection to come free, and a
// request that finds maxPendingRequests already waiting is refused at once (WEFT_ERR_CIRCUIT_OPEN):
// a bounded queue, never an unbounded one. Idle connections close after the keep-alive timeout (the
// upstream's Keep-Alive hint minus a second, capped). The pool never re-sends a request: a failure is
// reported with whether anything was written (UpstreamError.requestSent), and the caller decides.

import type { Socket } from "node:net";
import type { Connector } from "./connector.ts";
import { H1Connection, type ConnectionOwner } from "./h1-connection.ts";
import {
  requestNotSent,
  UpstreamError,
  type UpstreamDispatcher,
  type UpstreamHandler,
  type UpstreamRequest,
} from "./upstream.ts";

export interface H1PoolOptions {
  /** Idle keep-alive when the upstream sends no hint (ms). */
  keepAliveTimeoutMs: number;
  /** Cap on an upstream's Keep-Alive hint (ms). */
  keepAliveMaxTimeoutMs: number;
}

const HINT_MARGIN_MS = 1_000;
/** Waiting requests allowed when maxConnections is set without maxPendingRequests (Envoy's default). */
const DEFAULT_MAX_PENDING = 1024;

interface Waiter {
  request: UpstreamRequest;
  handler: UpstreamHandler;
  cancelled: boolean;
}

/** A connector's failure: typed ones (connector.ts) pass as they are; anything else is still "not sent". */
function connectFailed(err: Error | null): Error {
  if (err !== null && requestNotSent(err)) return err;
  return new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", `connect failed: ${err?.message ?? "no socket"}`, {
    cause: err,
    requestSent: false,
  });
}

export class H1Pool implements UpstreamDispatcher, ConnectionOwner {
  readonly #connect: Connector;
  readonly #opts: H1PoolOptions;
  readonly #idle: H1Connection[] = [];
  readonly #all = new Set<H1Connection>();
  #connecting = 0;
  #closed = false;
  #drained: (() => void) | undefined;
  #maxConnections = 0;
  #maxPending = 0;
  readonly #waiting: Waiter[] = [];

  constructor(connect: Connector, opts: H1PoolOptions) {
    this.#connect = connect;
    this.#opts = opts;
  }

  get connections(): number {
    return this.#all.size;
  }

  get idleConnections(): number {
    return this.#idle.length;
  }

  /** Requests waiting for a connection (only when maxConnections is reached). */
  get pending(): number {
    return this.#waiting.length;
  }

  /** Circuit-breaker limits; 0 = unlimited connections (and then nothing ever waits). */
  setLimits(maxConnections: number, maxPendingRequests: number): void {
    this.#maxConnections = maxConnections;
    this.#maxPending = maxConnections > 0 ? maxPendingRequests || DEFAULT_MAX_PENDING : 0;
    // Connections opened before the limit: idle ones beyond it go now, busy ones when released, so
    // reusing an idle connection never exceeds the limit.
    while (this.#overLimit() && this.#idle.length > 0) (this.#idle.pop() as H1Connection).destroy();
    this.#admitWaiting();
  }

  #overLimit(): boolean {
    return this.#maxConnections > 0 && this.#all.size > this.#maxConnections;
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
    const idle = this.#idle;
    while (idle.length > 0) {
      const conn = idle.pop() as H1Connection;
      if (!conn.usable) continue;
      handler.onConnect(conn.abort);
      conn.run(request, handler);
      return true;
    }
    if (this.#maxConnections > 0 && this.#all.size + this.#connecting >= this.#maxConnections) {
      this.#wait(request, handler);
      return true;
    }
    this.#open(request, handler);
    return true;
  }

  #wait(request: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.#waiting.length >= this.#maxPending) {
      handler.onError(
        new UpstreamError(
          "WEFT_ERR_CIRCUIT_OPEN",
          `${this.#maxConnections} connections busy and ${this.#waiting.length} requests already waiting`,
          { requestSent: false },
        ),
      );
      return;
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
  }

  /** Hands free capacity to waiting requests: an idle connection, or room for a new one. */
  #admitWaiting(): void {
    while (this.#waiting.length > 0 && !this.#closed) {
      const idle = this.#idle.pop();
      if (idle !== undefined) {
        if (!idle.usable) continue;
        const w = this.#waiting.shift() as Waiter;
        w.cancelled = true; // no longer cancellable as a waiter: the connection's abort takes over
        w.handler.onConnect(idle.abort);
        idle.run(w.request, w.handler);
        continue;
      }
      if (this.#maxConnections > 0 && this.#all.size + this.#connecting >= this.#maxConnections) return;
      const w = this.#waiting.shift() as Waiter;
      w.cancelled = true;
      this.#open(w.request, w.handler);
    }
  }

  #open(request: UpstreamRequest, handler: UpstreamHandler): void {
    let cancelled: Error | undefined;
    handler.onConnect((err?: Error) => {
      if (cancelled) return;
      cancelled = err ?? new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", "request aborted");
      handler.onError(cancelled);
    });
    this.#connecting++;
    this.#connect({}, (err: Error | null, socket: Socket | null) => {
      this.#connecting--;
      if (err !== null || socket === null) {
        if (!cancelled) handler.onError(connectFailed(err));
        if (this.#waiting.length > 0) this.#admitWaiting();
        this.#checkDrained();
        return;
      }
      const conn = new H1Connection(this, socket);
      this.#all.add(conn);
      if (cancelled || this.#closed) {
        if (cancelled && !this.#closed) this.release(conn);
        else conn.destroy();
        if (this.#closed && !cancelled)
          handler.onError(
            new UpstreamError("WEFT_ERR_POOL_CLOSED", "pool closed while connecting", { requestSent: false }),
          );
        return;
      }
      handler.onConnect(conn.abort);
      conn.run(request, handler);
    });
  }

  release(conn: H1Connection): void {
    if (this.#closed || !conn.usable) {
      conn.destroy();
      return;
    }
    const hint = conn.keepAliveHintMs;
    const ms =
      hint > 0
        ? Math.min(hint - HINT_MARGIN_MS, this.#opts.keepAliveMaxTimeoutMs)
        : this.#opts.keepAliveTimeoutMs;
    if (ms <= 0) {
      conn.destroy();
      return;
    }
    if (this.#waiting.length === 0 && this.#overLimit()) {
      conn.destroy();
      return;
    }
    conn.idle(ms);
    this.#idle.push(conn);
    if (this.#waiting.length > 0) this.#admitWaiting();
  }

  remove(conn: H1Connection): void {
    this.#all.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    if (this.#waiting.length > 0) this.#admitWaiting();
    this.#checkDrained();
  }

  /** Closes idle connections now and the others once their response is done. */
  close(): Promise<void> {
    this.#closed = true;
    this.#failWaiting();
    for (const c of this.#idle.splice(0)) c.destroy();
    if (this.#all.size === 0 && this.#connecting === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#drained = resolve));
  }

  /** Closes every connection now (in-flight requests fail); connects under way are dropped when done. */
  destroy(): Promise<void> {
    this.#closed = true;
    this.#failWaiting();
    this.#idle.length = 0;
    for (const c of [...this.#all]) c.destroy();
    return Promise.resolve();
  }

  #failWaiting(): void {
    for (const w of this.#waiting.splice(0)) {
      w.cancelled = true;
      w.handler.onError(
        new UpstreamError("WEFT_ERR_POOL_CLOSED", "the endpoint's connection pool closed", {
          requestSent: false,
        }),
      );
    }
  }

  #checkDrained(): void {
    if (this.#drained && this.#all.size === 0 && this.#connecting === 0) {
      const d = this.#drained;
      this.#drained = undefined;
      d();
    }
  }
}
