// weft's HTTP/1.1 connection pool for one upstream endpoint: idle keep-alive connections are
// reused most-recently-used first; a request that finds none opens a new one (no limit yet —
// circuit breaking will add one). Idle connections close after the keep-alive timeout (the
// upstream's Keep-Alive hint minus a second, capped). A request that fails on a stale reused
// connection before any response byte is retried once on a fresh connection when replayable.

import type { Socket } from "node:net";
import type { Connector } from "./connector.ts";
import { H1Connection, type ConnectionOwner } from "./h1-connection.ts";
import {
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

export class H1Pool implements UpstreamDispatcher, ConnectionOwner {
  readonly #connect: Connector;
  readonly #opts: H1PoolOptions;
  readonly #idle: H1Connection[] = [];
  readonly #all = new Set<H1Connection>();
  #connecting = 0;
  #closed = false;
  #drained: (() => void) | undefined;

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

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): boolean {
    if (this.#closed) {
      handler.onError(new UpstreamError("WEFT_ERR_POOL_CLOSED", "the endpoint's connection pool is closed"));
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
    this.#open(request, handler);
    return true;
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
        if (!cancelled)
          handler.onError(err ?? new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", "connect failed"));
        this.#checkDrained();
        return;
      }
      const conn = new H1Connection(this, socket);
      this.#all.add(conn);
      if (cancelled || this.#closed) {
        if (cancelled && !this.#closed) this.release(conn);
        else conn.destroy();
        if (this.#closed && !cancelled)
          handler.onError(new UpstreamError("WEFT_ERR_POOL_CLOSED", "pool closed while connecting"));
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
    conn.idle(ms);
    this.#idle.push(conn);
  }

  remove(conn: H1Connection): void {
    this.#all.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    this.#checkDrained();
  }

  retry(request: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.#closed) handler.onError(new UpstreamError("WEFT_ERR_POOL_CLOSED", "pool closed"));
    else this.#open(request, handler);
  }

  /** Closes idle connections now and the others once their response is done. */
  close(): Promise<void> {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.destroy();
    if (this.#all.size === 0 && this.#connecting === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#drained = resolve));
  }

  /** Closes every connection now (in-flight requests fail); connects under way are dropped when done. */
  destroy(): Promise<void> {
    this.#closed = true;
    this.#idle.length = 0;
    for (const c of [...this.#all]) c.destroy();
    return Promise.resolve();
  }

  #checkDrained(): void {
    if (this.#drained && this.#all.size === 0 && this.#connecting === 0) {
      const d = this.#drained;
      this.#drained = undefined;
      d();
    }
  }
}
