// listen / drain / close for a listener: one front net.Server (the http server itself, or the
// inbound's protocol-sniffing front) and the HTTP edges it feeds. Tracks client connections for
// metrics and for drain: stop accepting, answer in-flight requests with Connection: close, close
// idle connections (and those still being sniffed, which carry no request), wait for the rest
// (bounded), then cut what remains.

import { once } from "node:events";
import type { AddressInfo, Server, Socket } from "node:net";
import type { Direction, ProxyMetrics } from "../metrics/registry.ts";

/**
 * What the lifecycle needs of an edge (HTTP/1.1: server-edge.ts; HTTP/2: h2-edge.ts; the sockets a
 * sniffing front has not handed on yet: undecided-sockets.ts).
 */
export interface LifecycleEdge {
  draining: boolean;
  /** The edge's own server, if it has one (closed with the listener unless it is the front). */
  readonly server?: { close(cb?: (err?: Error) => void): unknown };
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

export interface ProxyListener {
  /** Binds (port 0 picks a free port); resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  address(): AddressInfo | undefined;
  /** Stops accepting, lets in-flight requests finish (up to `timeoutMs`, default 5 s), then closes. */
  drain(timeoutMs?: number): Promise<void>;
  /** Closes now: every connection and upstream pool. */
  close(): Promise<void>;
}

function ignoreError(): void {}

export class ListenerLifecycle {
  readonly #front: Server;
  readonly #edges: LifecycleEdge[];
  readonly #sockets = new Set<Socket>();
  #idleWaiters: (() => void)[] = [];
  #draining: Promise<void> | undefined;
  #closed = false;

  constructor(front: Server, edges: LifecycleEdge[], metrics: ProxyMetrics, direction: Direction) {
    this.#front = front;
    this.#edges = edges;
    const active = metrics.downstreamConnectionsActive.series(direction);
    const total = metrics.downstreamConnectionsTotal.series(direction);
    const rx = metrics.downstreamReceivedBytes.series(direction);
    const tx = metrics.downstreamSentBytes.series(direction);
    front.on("connection", (socket: Socket) => {
      // A CONNECT tunnel is handed back to the server as a connection of its own: count it once.
      if (this.#sockets.has(socket)) return;
      socket.on("error", ignoreError);
      total.value++;
      active.value++;
      this.#sockets.add(socket);
      socket.once("close", () => {
        active.value--;
        rx.value += socket.bytesRead;
        tx.value += socket.bytesWritten;
        this.#sockets.delete(socket);
        if (this.#sockets.size === 0) this.#wakeIdleWaiters();
      });
    });
  }

  get closing(): boolean {
    return this.#draining !== undefined || this.#closed;
  }

  async listen(port: number, host = "127.0.0.1"): Promise<AddressInfo> {
    this.#front.listen(port, host);
    await Promise.race([
      once(this.#front, "listening"),
      once(this.#front, "error").then(([err]) => Promise.reject(err)),
    ]);
    return this.#front.address() as AddressInfo;
  }

  address(): AddressInfo | undefined {
    return (this.#front.address() as AddressInfo | null) ?? undefined;
  }

  drain(timeoutMs = 5_000): Promise<void> {
    this.#draining ??= this.#drain(timeoutMs);
    return this.#draining;
  }

  async #drain(timeoutMs: number): Promise<void> {
    for (const e of this.#edges) e.draining = true;
    if (this.#front.listening) this.#front.close();
    for (const e of this.#edges) e.closeIdleConnections();
    if (this.#sockets.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    this.#cutAll();
  }

  /** Closes the front and every connection now. */
  close(): void {
    this.#closed = true;
    for (const e of this.#edges) e.draining = true;
    if (this.#front.listening) this.#front.close();
    this.#cutAll();
  }

  #cutAll(): void {
    for (const e of this.#edges) {
      e.closeAllConnections();
      // Edges fed by a front never listened themselves; close() just stops their timers.
      if (e.server !== undefined && (e.server as unknown) !== this.#front) e.server.close(ignoreError);
    }
    for (const s of this.#sockets) s.destroy();
  }

  #wakeIdleWaiters(): void {
    const w = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const fn of w) fn();
  }
}
