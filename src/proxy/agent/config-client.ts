// The proxy's end of the config stream: one HTTP/2 request to the control plane, authenticated with the
// mesh certificate. Each snapshot is checked for consistency (model/snapshot-consistency.ts), then
// compiled in every listener and swapped in all at once (snapshot-cell.ts), and only then ACKed; a
// snapshot that fails either step is NACKed with the reason (the violations, or the listener and its
// compile error) and the proxy keeps running the previous one everywhere. A delta message is applied
// to the snapshot it runs (model/snapshot-delta.ts: a delta for another base is NACKed, and the control
// plane sends the whole snapshot) and the result goes through the same check, swap and ACK. The
// entries' versions the control plane gives are kept, and a reconnecting hello carries them, so a
// control plane that lost track of this proxy (a restart) can answer with a delta. When the
// control plane goes away the proxy keeps its last good snapshot and reconnects with exponential backoff
// and full jitter (backoff.ts) — a fleet that lost the same control plane does not come back in step —
// waiting at least what a busy control plane asked for (503 with Retry-After on the stream), and
// telling the control plane which version it runs so an unchanged snapshot is not resent. The app's
// health (health-check.ts) goes up the same stream; the latest state is re-sent after every hello,
// because a new session registers the Workload afresh, without the status the old one recorded.
// Whether the instance is serving (serving.ts) rides in every hello, and changes go up as `serving`.
// So do on-demand subscriptions (subscriptions.ts): subscribe/unsubscribe as they change, and the
// whole set in every hello.

import { connect, type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import { logSafe } from "../../model/log-safe.ts";
import {
  encodeMessage,
  LineDecoder,
  MAX_SNAPSHOT_MESSAGE_BYTES,
  STREAM_PATH,
  type ControlPlaneMessage,
  type DeltaMessage,
  type HealthMessage,
  type HelloMessage,
  type ProxyMessage,
  type ResourceVersions,
  type SnapshotMessage,
} from "../../model/stream-protocol.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { coversEntries, resourceVersionsProblem } from "../../model/resource-versions.ts";
import { applyDelta, MAX_SNAPSHOT_ENTRIES } from "../../model/snapshot-delta.ts";
import { describeViolations, snapshotViolations } from "../../model/snapshot-consistency.ts";
import type { Source, TlsMaterial } from "../types.ts";
import type { SnapshotCell } from "./snapshot-cell.ts";
import { parseRetryAfter, retryDelayMs } from "./backoff.ts";

/**
 * Why a snapshot was NACKed: it failed the consistency check (or a delta was malformed), a listener
 * could not compile it, or a delta did not apply to the snapshot the proxy runs (the control plane
 * then sends the whole snapshot).
 */
export type RejectReason = "inconsistent" | "compile_failed" | "base_mismatch";

export interface Rejection {
  version: string;
  reason: RejectReason;
  /** What the NACK said. */
  error: string;
}

/** Names per subscribe / unsubscribe message (the control plane's limit). */
const SUBSCRIPTION_BATCH = 64;

/** NACK messages are bounded: a snapshot's violations can be many and long. */
const MAX_NACK_ERROR_CHARS = 2048;

/** A hello with entry versions bigger than this goes without them (a changed snapshot then comes whole). */
export const MAX_HELLO_BYTES = 48 * 1024;

/** A message that passed its own checks, and the snapshot it makes, not yet in service. */
interface Pending {
  msg: SnapshotMessage | DeltaMessage;
  snapshot: ProxySnapshot;
  resources: ResourceVersions | undefined;
}

export interface ConfigClientOptions {
  /** Where accepted snapshots are put into service (compiled and swapped in every listener). */
  snapshot: SnapshotCell;
  url: string;
  ca: string;
  tls: Source<TlsMaterial>;
  hello: Omit<HelloMessage, "type" | "version">;
  log: (msg: string) => void;
  /** Each rejected snapshot (metrics count them by reason). */
  onReject?: (r: Rejection) => void;
  /** On-demand: the names subscribed now, re-sent in every hello (hello.onDemand must be set). */
  subscriptions?: () => string[];
  /** Backoff bounds (ms). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class ConfigClient {
  readonly snapshot: SnapshotCell;
  connected = false;
  /** The last snapshot NACKed, and why (kept after later ACKs: it says what went wrong last). */
  lastRejection?: Rejection;
  readonly #opts: ConfigClientOptions;
  #session?: ClientHttp2Session;
  #stream?: ClientHttp2Stream;
  #attempt = 0;
  /** What the control plane's last refusal asked for (Retry-After), honoured by the next wait. */
  #retryAfterMs: number | undefined;
  #timer?: NodeJS.Timeout;
  #stopped = false;
  /** The last health state reported; undefined while nothing was ever reported (healthy by default). */
  #health?: HealthMessage;
  /** Whether peers may send to this instance; every hello carries it. */
  #serving: boolean | undefined;
  /** The running snapshot's entry versions, when the control plane gave them (hello resumes with them). */
  #resources?: ResourceVersions;
  /** Bytes of config messages read from the control plane (diagnostics; the simulator sums them). */
  bytesReceived = 0;

  constructor(opts: ConfigClientOptions) {
    this.#opts = opts;
    this.snapshot = opts.snapshot;
    this.#serving = opts.hello.serving;
  }

  start(): void {
    this.#connect();
  }

  #connect(): void {
    if (this.#stopped) return;
    const tls = this.#opts.tls.current();
    if (!tls) return this.#retry("no certificate yet");
    const session = connect(this.#opts.url, { ca: this.#opts.ca, key: tls.keyPem, cert: tls.certChainPem });
    this.#session = session;
    session.on("error", (err) => this.#lost(session, err.message));
    session.on("close", () => this.#lost(session, "connection closed"));
    session.on("goaway", () => this.#lost(session, "control plane going away"));
    session.setTimeout(30_000, () => session.ping(() => {}));
    const stream = session.request(
      { ":method": "POST", ":path": STREAM_PATH, "content-type": "application/x-ndjson" },
      { endStream: false },
    );
    this.#stream = stream;
    // One line at most, bounded: a control plane (or whatever answers at its address) cannot make
    // the proxy buffer without limit.
    const decoder = new LineDecoder(MAX_SNAPSHOT_MESSAGE_BYTES);
    const onData = (chunk: Buffer) => {
      const messages: ControlPlaneMessage[] = [];
      try {
        decoder.push(chunk, (m) => messages.push(m as ControlPlaneMessage));
      } catch (err) {
        this.#lost(session, `bad message from control plane: ${(err as Error).message}`);
        return;
      }
      this.bytesReceived += chunk.length;
      this.#onMessages(messages);
    };
    // Messages are read only once the answer is known to be 200: node:http2 may hand over DATA read
    // with the head before it emits 'response' (a later tick), so 'data' is not listened to earlier.
    stream.on("response", (headers) => {
      if (headers[":status"] !== 200) {
        const retryAfter = headers["retry-after"];
        this.#retryAfterMs = parseRetryAfter(typeof retryAfter === "string" ? retryAfter : undefined);
        return this.#lost(session, `control plane answered ${headers[":status"]}`);
      }
      this.connected = true;
      this.#attempt = 0;
      this.#opts.log(`connected to control plane ${this.#opts.url}`);
      stream.on("data", onData);
    });
    stream.on("end", () => stream.end());
    stream.on("error", (err) => this.#lost(session, err.message));
    stream.on("close", () => this.#lost(session, "stream closed"));
    this.#send(this.#hello());
    if (this.#health) this.#send(this.#health);
  }

  /**
   * Reports the local app's health to the control plane (recorded as the Workload's status). Sent now
   * if connected; in any case remembered and sent again after each (re)connect's hello.
   */
  reportHealth(healthy: boolean, detail?: string): void {
    this.#health = { type: "health", healthy, ...(detail ? { detail } : {}) };
    this.#send(this.#health);
  }

  /** The instance starts or stops taking traffic: sent now if connected, and in every later hello. */
  reportServing(serving: boolean): void {
    this.#serving = serving;
    this.#send({ type: "serving", serving });
  }

  /** On-demand: asks for these names' config (sent now if connected; hellos carry the rest). */
  subscribe(names: string[]): void {
    for (let i = 0; i < names.length; i += SUBSCRIPTION_BATCH)
      this.#send({ type: "subscribe", names: names.slice(i, i + SUBSCRIPTION_BATCH) });
  }

  /** On-demand: these names are no longer used. */
  unsubscribe(names: string[]): void {
    for (let i = 0; i < names.length; i += SUBSCRIPTION_BATCH)
      this.#send({ type: "unsubscribe", names: names.slice(i, i + SUBSCRIPTION_BATCH) });
  }

  /** The hello: who it is, and what it runs — with each entry's version unless that makes it too big. */
  #hello(): HelloMessage {
    const hello: HelloMessage = {
      type: "hello",
      ...this.#opts.hello,
      serving: this.#serving,
      deltas: true,
      version: this.snapshot.current()?.version,
    };
    if (hello.version === undefined || this.#resources === undefined) return hello;
    const withResources = { ...hello, resources: this.#resources };
    return Buffer.byteLength(encodeMessage(withResources)) <= MAX_HELLO_BYTES ? withResources : hello;
  }

  /**
   * Messages that arrived together, in order. A whole snapshot makes everything before it moot (only
   * the newest is worth compiling); deltas after it are applied in order on top of it. What results
   * is checked and put into service once, and the last message that went into it ACKed.
   */
  #onMessages(messages: ControlPlaneMessage[]): void {
    const newest = messages.findLastIndex((m) => m?.type === "snapshot");
    let pending: Pending | undefined;
    for (const [i, m] of messages.entries()) {
      if (m?.type === "error") {
        this.#opts.log(`control plane refused the stream: ${logSafe(m.code, 64)}: ${logSafe(m.message)}`);
      } else if (m?.type === "snapshot" && i === newest) {
        pending = { msg: m, snapshot: m.snapshot, resources: this.#snapshotResources(m) };
      } else if (m?.type === "delta" && i > newest) {
        const base = pending ?? { snapshot: this.snapshot.current(), resources: this.#resources };
        const r = applyDelta(base.snapshot, base.resources, m);
        if (r.error !== undefined) {
          // What came before it still runs; what comes after it builds on it, and fails the same way.
          if (pending) this.#run(pending);
          pending = undefined;
          this.#reject(m, r.baseMismatch ? "base_mismatch" : "inconsistent", `delta not applied: ${r.error}`);
          continue;
        }
        pending = { msg: m, snapshot: r.snapshot, resources: r.resources };
      }
    }
    if (pending) this.#run(pending);
  }

  /** A snapshot message's entry versions, if well-formed and covering exactly its entries. */
  #snapshotResources(m: SnapshotMessage): ResourceVersions | undefined {
    if (m.resources === undefined) return undefined;
    const problem = resourceVersionsProblem(m.resources, "snapshot.resources", {
      maxEntries: MAX_SNAPSHOT_ENTRIES,
    });
    const ok = problem === undefined && coversEntries(m.resources, m.snapshot);
    return ok ? m.resources : undefined;
  }

  /** Checks, puts into service and ACKs a snapshot (received whole or built from deltas), or NACKs it. */
  #run({ msg, snapshot, resources }: Pending): void {
    const check = snapshotViolations(snapshot);
    if (check.violations.length === 0 && snapshot.version !== msg.version)
      check.violations.push({ path: "version", message: "differs from the message's version" });
    if (check.violations.length > 0)
      return this.#reject(msg, "inconsistent", `inconsistent snapshot: ${describeViolations(check)}`);
    let problem: string | undefined;
    try {
      problem = this.snapshot.publish(snapshot);
    } catch (err) {
      // A subscriber's bug must not take the proxy down; the control plane hears of it.
      problem = `publishing failed: ${(err as Error).message}`;
    }
    if (problem) return this.#reject(msg, "compile_failed", `not applied: ${problem}`);
    this.#resources = resources;
    this.#send({ type: "ack", nonce: msg.nonce, version: msg.version });
  }

  #reject(msg: SnapshotMessage | DeltaMessage, reason: RejectReason, error: string): void {
    const bounded =
      error.length > MAX_NACK_ERROR_CHARS ? `${error.slice(0, MAX_NACK_ERROR_CHARS)}...` : error;
    const version = typeof msg.version === "string" ? msg.version.slice(0, 128) : String(msg.version);
    this.lastRejection = { version, reason, error: bounded };
    this.#opts.onReject?.(this.lastRejection);
    this.#opts.log(
      `rejected config ${logSafe(version, 80)}; still running ${logSafe(this.snapshot.current()?.version ?? "none", 80)}: ${logSafe(bounded)}`,
    );
    this.#send({ type: "nack", nonce: msg.nonce, version, error: bounded });
  }

  #send(msg: ProxyMessage): void {
    if (this.#stream?.writable) this.#stream.write(encodeMessage(msg));
  }

  #lost(session: ClientHttp2Session, why: string): void {
    if (session !== this.#session || this.#stopped) return;
    this.#session = undefined;
    this.#stream = undefined;
    if (this.connected) this.#opts.log(`lost control plane (${logSafe(why)}); serving last good config`);
    this.connected = false;
    session.destroy();
    this.#retry(why);
  }

  #retry(_why: string): void {
    if (this.#stopped) return;
    const policy = { baseMs: this.#opts.minBackoffMs ?? 100, capMs: this.#opts.maxBackoffMs ?? 5_000 };
    const delay = retryDelayMs(this.#attempt++, policy, this.#retryAfterMs);
    this.#retryAfterMs = undefined;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  /** Deregisters now (instead of after the control plane's grace period) and stops. */
  async stop(deregister: boolean): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const session = this.#session;
    if (!session) return;
    if (deregister) this.#send({ type: "bye" });
    // The control plane ends the stream once it has deregistered us; don't wait long for it.
    const stream = this.#stream;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 500);
      stream?.once("close", () => {
        clearTimeout(t);
        resolve();
      });
      stream?.end();
    });
    this.#session = undefined;
    session.destroy();
  }
}
