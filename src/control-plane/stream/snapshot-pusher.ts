// Pushes snapshots to one proxy at the pace the proxy reads them. It asks the snapshot cache for the
// next version the proxy does not have (a one-shot watch), writes it, and asks again only once the
// stream has room: when write() returns false it waits for 'drain'. Meanwhile the mesh may change
// any number of times; the cache just marks the proxy stale, and the next watch gets one snapshot
// of the newest state. What the control plane holds for a proxy is thus at most the one encoded
// snapshot being sent, plus the cache's current one — never a queue of them.
//
// The message is the protocol's usual line (stream-protocol.ts), with the snapshot's JSON taken from
// the compiler's cached encoding (compile/piece.ts): pieces shared by many proxies are not encoded
// again per proxy, and their Buffer is written as is (by reference, not copied per stream).

import type { Writable } from "node:stream";
import type { SnapshotMessage } from "../../model/stream-protocol.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { snapshotParts, type EncodedParts } from "../compile/piece.ts";
import type { PushStats } from "../metrics.ts";

export interface SnapshotPusherOptions {
  stream: Writable;
  /** The next snapshot whose version differs from `version` (snapshot-cache.ts's watch, bound to this proxy). */
  next: (version: string | undefined, onSnapshot: (s: ProxySnapshot) => void) => () => void;
  /** The version the proxy already runs (from its hello), never re-sent. */
  initialVersion?: string;
  /** The control plane's push counters (metrics.ts), shared by every pusher. */
  stats?: PushStats;
}

export class SnapshotPusher {
  readonly #stream: Writable;
  readonly #next: SnapshotPusherOptions["next"];
  readonly #stats?: PushStats;
  #sentVersion: string | undefined;
  #nonce = 0;
  #cancel?: () => void;
  #stopped = false;
  /** Snapshots written (counted for tests and diagnostics). */
  sent = 0;

  constructor(opts: SnapshotPusherOptions) {
    this.#stream = opts.stream;
    this.#next = opts.next;
    this.#sentVersion = opts.initialVersion;
    this.#stats = opts.stats;
  }

  /** Nonce of the last snapshot written (ACKs are matched against it). */
  get nonce(): number {
    return this.#nonce;
  }

  /** Version of the last snapshot written (or the one the proxy said it runs). */
  get version(): string | undefined {
    return this.#sentVersion;
  }

  start(): void {
    this.#watch();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
    this.#stream.off("drain", this.#onDrain);
  }

  #watch(): void {
    if (this.#stopped) return;
    this.#cancel = this.#next(this.#sentVersion, (s) => this.#write(s));
  }

  #write(snapshot: ProxySnapshot): void {
    this.#cancel = undefined;
    if (this.#stopped || !this.#stream.writable) return;
    this.#sentVersion = snapshot.version;
    this.sent++;
    const parts = snapshotMessageParts(++this.#nonce, snapshot);
    if (this.#stats) {
      this.#stats.snapshots++;
      for (const p of parts) this.#stats.bytes += Buffer.byteLength(p);
    }
    let room = true;
    this.#stream.cork();
    for (const p of parts) room = this.#stream.write(p);
    this.#stream.uncork();
    if (room) queueMicrotask(() => this.#watch());
    else this.#stream.once("drain", this.#onDrain);
  }

  readonly #onDrain = (): void => this.#watch();
}

/** encodeMessage's line for a SnapshotMessage, in parts, around the snapshot's cached encoding. */
export function snapshotMessageParts(nonce: number, snapshot: ProxySnapshot): EncodedParts {
  const head: Omit<SnapshotMessage, "snapshot"> = { type: "snapshot", nonce, version: snapshot.version };
  const out: (string | Buffer)[] = [`${JSON.stringify(head).slice(0, -1)},"snapshot":`];
  // Adjacent strings joined: one write per shared Buffer and per stretch of the proxy's own text.
  for (const p of [...snapshotParts(snapshot), "}\n"]) {
    const last = out.length - 1;
    if (typeof p === "string" && typeof out[last] === "string") out[last] += p;
    else out.push(p);
  }
  return out;
}

/** encodeMessage's line for a SnapshotMessage, byte for byte (snapshotMessageParts joined). */
export function encodeSnapshotMessage(nonce: number, snapshot: ProxySnapshot): string {
  return snapshotMessageParts(nonce, snapshot)
    .map((p) => (typeof p === "string" ? p : p.toString("utf8")))
    .join("");
}
