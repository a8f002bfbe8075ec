// The upgraded connections of one listener, so that closing the listener closes them too: once
// upgraded, a client connection is no longer an HTTP connection that the server can close.

import type { Socket } from "node:net";

export class Tunnels {
  readonly #live = new Set<Socket>();

  add(client: Socket): void {
    this.#live.add(client);
  }

  delete(client: Socket): void {
    this.#live.delete(client);
  }

  get size(): number {
    return this.#live.size;
  }

  /** Closes every tunnel now (its upstream follows: see tunnel.ts). */
  destroyAll(): void {
    for (const s of this.#live) s.destroy();
    this.#live.clear();
  }
}
