// The pool for a mesh mTLS endpoint (a peer sidecar): the first connection offers ALPN
// ["h2", "http/1.1"] and the peer's choice decides, once per endpoint, what carries every request:
// "h2" → an HTTP/2 pool (h2-pool.ts; requests from HTTP/1.1 apps become streams multiplexed over one
// connection), anything else → the HTTP/1.1 pool (h1-pool.ts), whose later connections offer
// http/1.1 only. The negotiating connection itself becomes the chosen pool's first connection.
// Requests that arrive while it is being made wait (bounded); a failed connect fails them as not sent
// and the next request negotiates again. The choice is kept until the pool closes (the endpoint
// leaves the config): a peer that starts speaking h2 later is used so from its next pool on.

import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { ConnectCallback, Connector } from "./connector.ts";
import { H1Pool, type H1PoolOptions } from "./h1-pool.ts";
import { H2Pool } from "./h2-pool.ts";
import {
  requestNotSent,
  UpstreamError,
  type UpstreamDispatcher,
  type UpstreamHandler,
  type UpstreamRequest,
} from "./upstream.ts";

export interface AlpnPoolOptions extends H1PoolOptions {
  /** Offers ["h2", "http/1.1"]. */
  negotiate: Connector;
  /** Offers http/1.1 only: the HTTP/1.1 pool's further connections. */
  http1: Connector;
  /** "host:port" of the endpoint (:authority default). */
  authority: string;
}

type Chosen =
  (UpstreamDispatcher & { setLimits(maxConnections: number, maxPending: number): void }) | undefined;

interface Waiter {
  request: UpstreamRequest;
  handler: UpstreamHandler;
  cancelled: boolean;
}

const MAX_WAITING = 1024;

/** A connector whose first call hands out `socket` (already connected), later calls `next`. */
function primed(socket: Socket, next: Connector): Connector {
  let first: Socket | undefined = socket;
  return (opts: unknown, cb: ConnectCallback) => {
    const s = first;
    first = undefined;
    if (s !== undefined && !s.destroyed) cb(null, s);
    else next(opts, cb);
  };
}

function notH2(socket: Socket): Error | undefined {
  const p = (socket as TLSSocket).alpnProtocol;
  if (p === "h2") return undefined;
  return new UpstreamError(
    "WEFT_ERR_UPSTREAM_PROTOCOL",
    `peer sidecar negotiated ${p || "no protocol"}, not h2`,
    {
      requestSent: false,
    },
  );
}

export class AlpnPool implements UpstreamDispatcher {
  readonly #opts: AlpnPoolOptions;
  #chosen: Chosen;
  #negotiating = false;
  #closed = false;
  #limits: [number, number] | undefined;
  readonly #waiting: Waiter[] = [];

  constructor(opts: AlpnPoolOptions) {
    this.#opts = opts;
  }

  /** "h2", "http/1.1", or undefined before the first connection. */
  get protocol(): string | undefined {
    if (this.#chosen === undefined) return undefined;
    return this.#chosen instanceof H2Pool ? "h2" : "http/1.1";
  }

  /** The pool requests go to once negotiated (tests, /clusters). */
  get chosen(): UpstreamDispatcher | undefined {
    return this.#chosen;
  }

  setLimits(maxConnections: number, maxPending: number): void {
    this.#limits = [maxConnections, maxPending];
    this.#chosen?.setLimits(maxConnections, maxPending);
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): boolean {
    if (this.#chosen !== undefined) return this.#chosen.dispatch(request, handler);
    if (this.#closed) {
      handler.onError(
        new UpstreamError("WEFT_ERR_POOL_CLOSED", "the endpoint's connection pool is closed", {
          requestSent: false,
        }),
      );
      return false;
    }
    if (this.#waiting.length >= MAX_WAITING) {
      handler.onError(
        new UpstreamError(
          "WEFT_ERR_CIRCUIT_OPEN",
          `${MAX_WAITING} requests already wait for the first connection`,
          {
            requestSent: false,
          },
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
    if (!this.#negotiating) this.#negotiate();
    return true;
  }

  #negotiate(): void {
    this.#negotiating = true;
    this.#opts.negotiate({}, (err, socket) => {
      this.#negotiating = false;
      if (err !== null || socket === null) {
        const e =
          err !== null && requestNotSent(err)
            ? err
            : new UpstreamError(
                "WEFT_ERR_UPSTREAM_CLOSED",
                `connect failed: ${err?.message ?? "no socket"}`,
                {
                  cause: err,
                  requestSent: false,
                },
              );
        this.#fail(e);
        return;
      }
      if (this.#closed) {
        socket.destroy();
        return;
      }
      const o = this.#opts;
      const chosen: NonNullable<Chosen> =
        (socket as TLSSocket).alpnProtocol === "h2"
          ? new H2Pool(primed(socket, o.negotiate), {
              scheme: "https",
              authority: o.authority,
              accept: notH2,
            })
          : new H1Pool(primed(socket, o.http1), o);
      if (this.#limits !== undefined) chosen.setLimits(...this.#limits);
      this.#chosen = chosen;
      for (const w of this.#waiting.splice(0)) {
        if (w.cancelled) continue;
        w.cancelled = true;
        chosen.dispatch(w.request, w.handler);
      }
    });
  }

  #fail(err: Error): void {
    for (const w of this.#waiting.splice(0)) {
      if (w.cancelled) continue;
      w.cancelled = true;
      w.handler.onError(err);
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#fail(
      new UpstreamError("WEFT_ERR_POOL_CLOSED", "the endpoint's connection pool closed", {
        requestSent: false,
      }),
    );
    return this.#chosen?.close() ?? Promise.resolve();
  }

  destroy(): Promise<void> {
    this.#closed = true;
    this.#fail(
      new UpstreamError("WEFT_ERR_POOL_CLOSED", "the endpoint's connection pool closed", {
        requestSent: false,
      }),
    );
    return this.#chosen?.destroy() ?? Promise.resolve();
  }
}
