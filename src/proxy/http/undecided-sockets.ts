// The connections a listener's front has accepted but not yet handed to an edge: a sniffer is still
// reading their first bytes (h2c-sniff.ts, ../inbound/protocol-sniffer.ts) or, on the inbound, they
// have not spoken at all. None of them carries a request, so a draining listener closes them at once
// instead of waiting for their detection timeout (listener-lifecycle.ts registers this as an edge).
// Before this existed, a client that connected and half-closed without sending a byte (a port probe,
// a load generator's last connection) held a sidecar's exit for the whole drain timeout.

import type { Socket } from "node:net";
import type { LifecycleEdge } from "./listener-lifecycle.ts";

export class UndecidedSockets implements LifecycleEdge {
  draining = false;
  readonly #sockets = new Set<Socket>();

  /** A socket the front is classifying; forgotten when handed on (decided) or closed. */
  add(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
  }

  /** The socket went to an edge: from now on that edge's drain decides when it closes. */
  decided(socket: Socket): void {
    this.#sockets.delete(socket);
  }

  get size(): number {
    return this.#sockets.size;
  }

  closeIdleConnections(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  closeAllConnections(): void {
    this.closeIdleConnections();
  }
}
