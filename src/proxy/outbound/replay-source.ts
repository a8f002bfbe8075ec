// A request body that can be sent more than once while it is still arriving, as Envoy's router
// does for retries, hedges and mirrors: the live body is read once; each attempt gets a reader
// that first replays the chunks kept so far and then follows the live body as it arrives. The copy
// is bounded by the rule's maxBufferedBodyBytes: once more than that has been read, the kept chunks
// are dropped, no new reader can be made (the request is no longer retryable), and the readers
// already under way keep the body to its end (a reader still replaying gets the rest of the copy at
// once — never more than the limit — and then follows the live body).
//
// Back-pressure: the live body pauses while any active reader that is following it is full, and
// flows again once every one of them is read; readers still replaying read the copy at their own
// pace. A shadow reader (a mirror) never holds the live body back: it is cut off when the body
// outgrows the limit, so what it may hold stays bounded too. A reader that is destroyed (its attempt
// ended) stops counting at once. The live body failing (client gone, framing error) fails every
// reader with that error; its end ends them.

import { Readable } from "node:stream";

/** What cuts a shadow reader off when the body outgrows the limit. */
class ReplayOverflowError extends Error {}

/** `err` (or its cause) is a shadow reader cut off by the limit. */
export function isReplayOverflow(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++)
    if (e instanceof ReplayOverflowError) return true;
  return false;
}

function ignore(): void {}

class ReplayReader extends Readable {
  readonly src: ReplaySource;
  readonly shadow: boolean;
  /** Index of the next kept chunk to replay; -1 once it follows the live body. */
  pos = 0;
  /** A push was refused: the live body waits for this reader (unless it is a shadow). */
  full = false;
  /** Cut off before anyone read it: fails on its first read, when its transport listens. */
  pendingError: Error | undefined = undefined;

  constructor(src: ReplaySource, shadow: boolean) {
    super();
    this.src = src;
    this.shadow = shadow;
    // A reader can fail before its transport listens (still connecting) or after it stopped (the
    // attempt ended): the transport sees the error when it listens; the process never does.
    this.on("error", ignore);
  }

  override _read(): void {
    if (this.pendingError !== undefined) {
      this.destroy(this.pendingError);
      return;
    }
    this.full = false;
    this.src.pull(this);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.src.drop(this);
    cb(err);
  }
}

export class ReplaySource {
  readonly #live: Readable;
  readonly #limit: number;
  /** What has been read so far while it fits the limit; null once the limit was passed. */
  #kept: Buffer[] | null = [];
  #size = 0;
  #ended = false;
  #failed: Error | undefined = undefined;
  #paused = false;
  readonly #readers = new Set<ReplayReader>();
  /** Called once when the body outgrows the limit (the request stops being replayable). */
  onOverflow: (() => void) | undefined = undefined;

  constructor(live: Readable, limit: number) {
    this.#live = live;
    this.#limit = limit;
    live.on("data", this.#onData);
    live.on("end", this.#onEnd);
    live.on("error", this.#onError);
    live.on("aborted", this.#onAborted);
    live.on("close", this.#onClose);
  }

  /** A new reader may still be made: the body so far is all kept and nothing failed. */
  get replayable(): boolean {
    return this.#kept !== null && this.#failed === undefined;
  }

  /** Bytes read from the live body so far. */
  get size(): number {
    return this.#size;
  }

  get limit(): number {
    return this.#limit;
  }

  /** The whole body when it has ended and is kept, else undefined. */
  get whole(): Buffer | undefined {
    return this.#ended && this.#kept !== null ? Buffer.concat(this.#kept, this.#size) : undefined;
  }

  /** A reader of the whole body from its start, or undefined when that is no longer possible. */
  reader(shadow = false): Readable | undefined {
    if (!this.replayable) return undefined;
    const r = new ReplayReader(this, shadow);
    this.#readers.add(r);
    return r;
  }

  /** Feeds `r` what it may have now: kept chunks while it is replaying, the end once it came. */
  pull(r: ReplayReader): void {
    const kept = this.#kept;
    if (r.pos !== -1 && kept !== null) {
      while (r.pos < kept.length) {
        if (!r.push(kept[r.pos++])) {
          r.full = true;
          return;
        }
      }
      r.pos = -1;
      if (this.#ended) r.push(null);
      return;
    }
    this.#maybeResume();
  }

  /** `r` was destroyed: it no longer holds the live body back. */
  drop(r: ReplayReader): void {
    this.#readers.delete(r);
    this.#maybeResume();
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#size += chunk.length;
    const kept = this.#kept;
    if (kept !== null) {
      kept.push(chunk);
      if (this.#size > this.#limit) this.#overflow(kept);
    }
    // With no reader left and no copy to keep, the chunk is discarded: the live body is still read
    // to its end, or an HTTP/1.1 connection could not carry the next request.
    for (const r of this.#readers) if (r.pos === -1 && !r.push(chunk)) r.full = true;
    for (const r of this.#readers) {
      if (r.full && !r.shadow && !this.#paused) {
        this.#paused = true;
        this.#live.pause();
        return;
      }
    }
  };

  /** The copy is dropped: readers still replaying get the rest of it at once; shadows are cut off. */
  #overflow(kept: Buffer[]): void {
    this.#kept = null;
    for (const r of this.#readers) {
      if (r.shadow) {
        this.#cut(r, new ReplayOverflowError(`request body larger than ${this.#limit} bytes: not mirrored`));
        continue;
      }
      if (r.pos === -1) continue;
      // Everything kept except the chunk that overflowed, which the live loop pushes to it.
      for (let i = r.pos; i < kept.length - 1; i++) r.push(kept[i]);
      r.pos = -1;
    }
    this.onOverflow?.();
  }

  #maybeResume(): void {
    if (!this.#paused) return;
    for (const r of this.#readers) if (r.full && !r.shadow) return;
    this.#paused = false;
    this.#live.resume();
  }

  readonly #onEnd = (): void => {
    this.#ended = true;
    for (const r of this.#readers) if (r.pos === -1) r.push(null);
  };

  readonly #onError = (err: Error): void => {
    if (this.#failed !== undefined) return;
    this.#failed = err;
    this.#kept = null;
    for (const r of [...this.#readers]) this.#cut(r, err);
  };

  /**
   * Fails `r` with `err`. A reader nobody listens to yet (its transport is still connecting) fails on
   * its first read instead: a stream destroyed before its consumer attached would never tell it.
   */
  #cut(r: ReplayReader, err: Error): void {
    this.#readers.delete(r);
    if (r.readableFlowing !== null) r.destroy(err);
    else r.pendingError = err;
  }

  readonly #onAborted = (): void => this.#onError(new Error("client aborted the request"));

  readonly #onClose = (): void => {
    if (!this.#ended) this.#onAborted();
  };
}
