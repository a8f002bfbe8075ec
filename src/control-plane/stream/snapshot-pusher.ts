// Pushes snapshots to one proxy at the pace the proxy reads them. A push writes the newest snapshot
// only when the stream has room: once write() returns false nothing more is written until 'drain', and
// every change meanwhile just marks the proxy as behind. On 'drain' the snapshot is compiled afresh
// from the state of that moment, so a slow or stalled proxy skips every version in between. What the
// control plane holds for a proxy is thus at most one encoded snapshot (the one being sent), whatever
// the rate of change — never a queue of them.

import type { Writable } from "node:stream";
import { encodeMessage, type SnapshotMessage } from "../../model/stream-protocol.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";

export interface SnapshotPusherOptions {
  stream: Writable;
  /** The proxy's snapshot as of now (compiled on demand, only when it can be sent). */
  compile: () => ProxySnapshot;
  /** The version the proxy already runs (from its hello), never re-sent. */
  initialVersion?: string;
}

export class SnapshotPusher {
  readonly #stream: Writable;
  readonly #compile: () => ProxySnapshot;
  #sentVersion: string | undefined;
  #nonce = 0;
  /** Waiting for 'drain': the stream holds a snapshot the proxy has not read yet. */
  #blocked = false;
  /** A change arrived while blocked: send the newest snapshot on 'drain'. */
  #behind = false;
  #stopped = false;
  /** Snapshots written, and pushes that found the stream full (counted for tests and diagnostics). */
  sent = 0;
  coalesced = 0;

  constructor(opts: SnapshotPusherOptions) {
    this.#stream = opts.stream;
    this.#compile = opts.compile;
    this.#sentVersion = opts.initialVersion;
    this.#stream.on("drain", this.#onDrain);
  }

  /** Nonce of the last snapshot written (ACKs are matched against it). */
  get nonce(): number {
    return this.#nonce;
  }

  get version(): string | undefined {
    return this.#sentVersion;
  }

  /** The mesh changed: send the proxy's new snapshot now, or as soon as the stream drains. */
  push(): void {
    if (this.#stopped) return;
    if (this.#blocked) {
      this.#behind = true;
      this.coalesced++;
      return;
    }
    const snapshot = this.#compile();
    if (snapshot.version === this.#sentVersion) return;
    if (!this.#stream.writable) return;
    this.#sentVersion = snapshot.version;
    const msg: SnapshotMessage = {
      type: "snapshot",
      nonce: ++this.#nonce,
      version: snapshot.version,
      snapshot,
    };
    this.sent++;
    if (!this.#stream.write(encodeMessage(msg))) this.#blocked = true;
  }

  stop(): void {
    this.#stopped = true;
    this.#stream.off("drain", this.#onDrain);
  }

  readonly #onDrain = (): void => {
    this.#blocked = false;
    if (!this.#behind) return;
    this.#behind = false;
    this.push();
  };
}
