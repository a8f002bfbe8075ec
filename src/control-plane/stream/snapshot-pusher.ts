// Pushes config to one proxy at the pace the proxy takes it. It asks the snapshot cache for the next
// version the proxy does not have (a one-shot watch), writes it, and asks again only once the proxy
// answered it (ACK or NACK, as an xDS server waits for the next request) and the stream has room
// (after 'drain' when write() returned false). Meanwhile the mesh may change any number of times; the
// cache just marks the proxy stale, and the next watch gets one snapshot of the newest state. What
// the control plane holds for a proxy is thus at most the one message being sent, plus the cache's
// current snapshot — never a queue of them, however small deltas are.
//
// What is written is a delta from what the proxy holds (delta-encoder.ts), made at send time against
// the last message actually written, so a proxy that was stalled through many changes gets one delta
// from its last state to the newest. The whole snapshot goes instead when the proxy's state is
// unknown — first push without a usable hello, after a NACK — or when the delta would be bigger. The
// proxy holds: the snapshot last written (a reference: its pieces are shared with other proxies), or
// what its hello described until the first push.
//
// NACKs: a NACKed delta (typically "base mismatch": the proxy did not hold what we thought) is
// answered with the newest snapshot, whole, at once. A NACKed whole snapshot is not resent (it would
// be NACKed again): the next change goes whole.
// Whole snapshots are written in parts: pieces shared by many proxies are not encoded again per
// proxy, and their Buffer is written as is (by reference, not copied per stream).

import type { Writable } from "node:stream";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import type { PushStats } from "../metrics.ts";
import type { DeltaEncoder, Held } from "./delta-encoder.ts";

export { encodeSnapshotMessage } from "./delta-encoder.ts";

export interface SnapshotPusherOptions {
  stream: Writable;
  /** The next snapshot whose version differs from `version` (snapshot-cache.ts's watch, bound to this proxy). */
  next: (version: string | undefined, onSnapshot: (s: ProxySnapshot) => void) => () => void;
  /** Makes the lines (shared by every proxy's pusher, so deltas between shared views are made once). */
  deltas: DeltaEncoder;
  /** The version the proxy already runs (from its hello), never re-sent. */
  initialVersion?: string;
  /** The control plane's push counters (metrics.ts), shared by every pusher. */
  stats?: PushStats;
  /** What the proxy holds by its hello (its version and resources), if it said. */
  initialHeld?: Held;
  /** The proxy takes delta messages (its hello said so); else every push is whole. */
  acceptsDeltas: boolean;
}

export class SnapshotPusher {
  readonly #stream: Writable;
  readonly #next: SnapshotPusherOptions["next"];
  readonly #stats?: PushStats;
  readonly #deltas: DeltaEncoder;
  readonly #acceptsDeltas: boolean;
  #sentVersion: string | undefined;
  /** What the proxy holds once it applied everything written; undefined = unknown (send whole). */
  #held: Held | undefined;
  #nonce = 0;
  /** Whether the last message written was a delta (a NACK of it is answered with the whole). */
  #lastWasDelta = false;
  /** The last message written is not answered (ACK or NACK) yet. */
  #unanswered = false;
  /** The stream's buffer is full: waiting for 'drain'. */
  #draining = false;
  /** Cancels the watch waiting for a snapshot; undefined when none waits. */
  #cancel?: () => void;
  #stopped = false;
  /** Messages written (counted for tests and diagnostics), how many of them were deltas, their bytes. */
  sent = 0;
  deltas = 0;
  bytes = 0;

  constructor(opts: SnapshotPusherOptions) {
    this.#stream = opts.stream;
    this.#next = opts.next;
    this.#deltas = opts.deltas;
    this.#acceptsDeltas = opts.acceptsDeltas;
    this.#sentVersion = opts.initialVersion;
    this.#stats = opts.stats;
    this.#held = opts.initialHeld;
  }

  /** Nonce of the last message written (ACKs are matched against it). */
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

  /** The proxy resumed (its hello's version is the newest): it holds `snapshot`, sent or not. */
  resumed(snapshot: ProxySnapshot): void {
    if (this.#nonce === 0 && snapshot.version === this.#sentVersion) this.#held = this.#deltas.held(snapshot);
  }

  /** The proxy ACKed `nonce`: if it is the last message, the next may go. */
  acked(nonce: number): void {
    if (nonce !== this.#nonce || !this.#unanswered) return;
    this.#unanswered = false;
    this.#watch();
  }

  /** The proxy NACKed `nonce`: it does not hold what was written. */
  nacked(nonce: number): void {
    if (nonce !== this.#nonce || !this.#unanswered) return;
    this.#unanswered = false;
    this.#held = undefined;
    // A delta refused (typically "base mismatch"): the newest goes again, whole. A whole snapshot
    // refused is not resent (it would be refused again): the next change goes whole.
    if (this.#lastWasDelta) this.#sentVersion = undefined;
    this.#watch();
  }

  #watch(): void {
    if (this.#stopped || this.#unanswered || this.#draining || this.#cancel !== undefined) return;
    let answered = false;
    const cancel = this.#next(this.#sentVersion, (s) => {
      answered = true;
      this.#cancel = undefined;
      this.#write(s);
    });
    // Answered at once: the write already happened.
    if (!answered) this.#cancel = cancel;
  }

  #write(snapshot: ProxySnapshot): void {
    if (this.#stopped || !this.#stream.writable) return;
    const nonce = ++this.#nonce;
    const { parts, delta } = this.#deltas.encode(
      nonce,
      snapshot,
      this.#acceptsDeltas ? this.#held : undefined,
    );
    this.#lastWasDelta = delta;
    this.#sentVersion = snapshot.version;
    this.#held = this.#deltas.held(snapshot);
    this.#unanswered = true;
    this.sent++;
    if (delta) this.deltas++;
    let room = true;
    this.#stream.cork();
    for (const p of parts) {
      this.bytes += Buffer.byteLength(p);
      room = this.#stream.write(p);
    }
    this.#stream.uncork();
    if (this.#stats) {
      if (delta) this.#stats.deltas++;
      else this.#stats.snapshots++;
      for (const p of parts) this.#stats.bytes += Buffer.byteLength(p);
    }
    if (!room) {
      this.#draining = true;
      this.#stream.once("drain", this.#onDrain);
    }
  }

  readonly #onDrain = (): void => {
    this.#draining = false;
    this.#watch();
  };
}
