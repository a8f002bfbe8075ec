// The config API's guard against clients that open a connection and never finish a request's headers
// (slowloris), in place of node:http's headersTimeout. Node's check compares wall-clock time since
// the request began, so after the control plane's own loop was busy for longer than the limit (a
// start storm: thousands of TLS handshakes and signatures) it fired on connections whose headers had
// long arrived but were still unread in the kernel — and closing a socket with unread data sends a
// reset (`read ECONNRESET` on every waiting proxy). Here the wait is counted in time the control
// plane was responsive (loop-lag.ts): a client is cut only after `timeoutMs` in which its headers
// could have been read and were not.
//
// A connection is watched from the end of its TLS handshake until its request's headers are parsed,
// and again from the end of each response until the next request's headers (keep-alive).

import type { Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Clock } from "../../store/store.ts";

export interface HeaderDeadlineOptions {
  timeoutMs: number;
  /** The control plane's own stalls (loop-lag.ts). */
  lag: { stalledMs(): number };
  clock: Clock;
  /** How often waiting connections are checked (ms). */
  sweepMs?: number;
}

interface Waiting {
  since: number;
  stalledAtStart: number;
}

export class HeaderDeadline {
  readonly #opts: HeaderDeadlineOptions;
  readonly #waiting = new Map<Socket, Waiting>();
  #timer: unknown;
  #stopped = false;
  /** Connections cut for not sending their headers in time. */
  cut = 0;

  constructor(server: Server, opts: HeaderDeadlineOptions) {
    this.#opts = opts;
    server.on("secureConnection", (socket: Socket) => {
      this.watch(socket);
      socket.once("close", () => this.#waiting.delete(socket));
    });
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      this.#waiting.delete(socket);
      res.once("finish", () => {
        if (!socket.destroyed) this.watch(socket);
      });
    };
    server.on("request", onRequest);
    server.on("checkContinue", onRequest);
    this.#arm();
  }

  /** Connections waiting for headers. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Starts (or restarts) the wait for a connection's next request headers. */
  watch(socket: Socket): void {
    this.#waiting.set(socket, { since: this.#opts.clock.now(), stalledAtStart: this.#opts.lag.stalledMs() });
  }

  stop(): void {
    this.#stopped = true;
    this.#opts.clock.clearTimeout(this.#timer);
  }

  /** Cuts every connection that had `timeoutMs` of the control plane's attention and sent no headers. */
  sweep(): void {
    const now = this.#opts.clock.now();
    const stalled = this.#opts.lag.stalledMs();
    for (const [socket, w] of this.#waiting) {
      const responsive = now - w.since - (stalled - w.stalledAtStart);
      if (responsive < this.#opts.timeoutMs) continue;
      this.#waiting.delete(socket);
      this.cut++;
      socket.destroy();
    }
  }

  #arm(): void {
    if (this.#stopped) return;
    const handle = this.#opts.clock.setTimeout(() => {
      this.sweep();
      this.#arm();
    }, this.#opts.sweepMs ?? 1_000);
    (handle as { unref?: () => void } | undefined)?.unref?.();
    this.#timer = handle;
  }
}
