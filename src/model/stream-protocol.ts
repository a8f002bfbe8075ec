// Messages of the proxy config stream (control plane port 15010): newline-delimited JSON over one
// long-lived HTTP/2 request, in both directions. The proxy authenticates with its mesh certificate.
//
//   proxy → cp   hello   once, first: who it is (workload address/ports/labels), how it is scoped, and
//                        what it runs already (version, per-resource versions, subscriptions)
//   cp → proxy   snapshot the whole config: first, and whenever a delta cannot be made
//   cp → proxy   delta   what changed since the version the proxy runs (entries added, changed or
//                        removed by name, as xDS's delta protocol does), whenever its config changes
//   proxy → cp   subscribe | unsubscribe   on-demand scoping: destinations the app started (or
//                        stopped) calling, by the host name it used
//   proxy → cp   ack | nack   for each snapshot, by nonce
//   proxy → cp   health  when its active health check of the local app changes state
//   proxy → cp   serving when the instance starts or stops taking traffic (see HelloMessage.serving)
//   proxy → cp   bye     before a graceful exit: deregister now instead of after the grace period

import type { ProxySnapshot } from "./snapshot.ts";

export const STREAM_PATH = "/weft.config.v1.ConfigStream/Stream";

export interface HelloMessage {
  type: "hello";
  /** Workload name the proxy registers; must start with "<service>-". */
  workload: string;
  /** Where peers reach this proxy's inbound (mTLS) listener. */
  address: string;
  port: number;
  /** The local app's port (for the Service's first port, and any port it does not declare). */
  appPort: number;
  /** App ports of the Service's other ports, keyed by service port number or port name. */
  appPorts?: Record<string, number>;
  labels?: Record<string, string>;
  zone?: string;
  /**
   * Services the proxy reaches ("name" or "name.namespace"). Without `onDemand`: absent = all (proxies
   * that predate on-demand scoping, and `--reach '*'`). With `onDemand`: the ones to pre-load.
   */
  reach?: string[];
  /**
   * On-demand scoping: the proxy starts with its own config plus `reach`, and asks for other
   * destinations (subscribe) when its app first calls them.
   */
  onDemand?: boolean;
  /** On-demand subscriptions the proxy holds already (after a reconnect): host names, as in subscribe. */
  subscriptions?: string[];
  /**
   * The proxy applies delta messages. Without it (proxies that predate deltas) every push is a whole
   * snapshot, as xDS clients choose the incremental protocol themselves.
   */
  deltas?: boolean;
  /** Version of the snapshot the proxy already runs (after a reconnect), if any. */
  version?: string;
  /**
   * The per-entry versions of the snapshot it runs (as the snapshot or delta messages gave them), so
   * a control plane that lost track of it (a restart) can send a delta instead of the whole snapshot.
   * Left out by a proxy when too big for one message; then a changed snapshot is resent whole.
   */
  resources?: ResourceVersions;
  /**
   * Whether peers may send to this instance yet. A proxy says false until it has its config, its
   * listeners are up and its app accepts connections (then sends `serving`), so registering never
   * makes it an endpoint early. Absent = true (proxies that predate the field).
   */
  serving?: boolean;
}

/** The instance starts (true) or stops (false: draining, app gone) taking traffic. */
export interface ServingMessage {
  type: "serving";
  serving: boolean;
}

export interface AckMessage {
  type: "ack";
  nonce: number;
  version: string;
}

export interface NackMessage {
  type: "nack";
  nonce: number;
  version: string;
  error: string;
}

export interface ByeMessage {
  type: "bye";
}

/** The local app's health as the sidecar's active check sees it; recorded as the Workload's status. */
export interface HealthMessage {
  type: "health";
  healthy: boolean;
  /** What the last check saw, e.g. "GET /healthz: 500". */
  detail?: string;
}

/**
 * On-demand scoping: the app called these host names (without port, lower-case, no trailing dot:
 * "reviews", "reviews.shop", "reviews.shop.svc", "reviews.shop.svc.cluster.local"). The control plane
 * resolves each as the proxy's host table would, and the next snapshot or delta carries the Service
 * it names, or lists the name in `unresolved`. Either way the version changes, so every subscribe is
 * answered.
 */
export interface SubscribeMessage {
  type: "subscribe";
  names: string[];
}

/** On-demand scoping: the app stopped calling these names (idle past the proxy's expiry). */
export interface UnsubscribeMessage {
  type: "unsubscribe";
  names: string[];
}

export type ProxyMessage =
  | HelloMessage
  | AckMessage
  | NackMessage
  | HealthMessage
  | ServingMessage
  | ByeMessage
  | SubscribeMessage
  | UnsubscribeMessage;

/** Content versions of a snapshot's entries, by section and key (equal version, equal content). */
export interface ResourceVersions {
  outbound: Record<string, string>;
  clusters: Record<string, string>;
}

export interface SnapshotMessage {
  type: "snapshot";
  nonce: number;
  version: string;
  snapshot: ProxySnapshot;
  /** Each entry's version (kept by the proxy, and given back in its hello to resume with a delta). */
  resources?: ResourceVersions;
}

/** A snapshot's sections other than its entry maps: small, and always sent whole in a delta. */
export type SnapshotHead = Omit<ProxySnapshot, "version" | "outbound" | "clusters">;

/**
 * What changed between the snapshot the proxy runs (`base`) and the new one (`version`): the head
 * whole, the entries added or changed whole with their versions, the entries removed by key. A proxy
 * whose snapshot is not `base` NACKs it; the control plane then sends the whole snapshot.
 */
export interface DeltaMessage {
  type: "delta";
  nonce: number;
  version: string;
  base: string;
  head: SnapshotHead;
  outbound: ProxySnapshot["outbound"];
  clusters: ProxySnapshot["clusters"];
  removed: { outbound: string[]; clusters: string[] };
  /** Versions of the entries in `outbound` and `clusters` above. */
  resources: ResourceVersions;
}

export interface ErrorMessage {
  type: "error";
  code: string;
  message: string;
}

export type ControlPlaneMessage = SnapshotMessage | DeltaMessage | ErrorMessage;

/**
 * Largest line the control plane reads from a proxy. Proxy messages are small (the biggest is hello,
 * a few labels); anything near this is an attack, refused before it is buffered, let alone parsed.
 */
export const MAX_PROXY_MESSAGE_BYTES = 64 * 1024;
/** Largest line a proxy reads from the control plane: one snapshot, scoped to what that proxy reaches. */
export const MAX_SNAPSHOT_MESSAGE_BYTES = 16 * 1024 * 1024;

/** A line longer than the decoder's limit: the stream is ended rather than buffered further. */
export class MessageTooLargeError extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`a stream message exceeds the limit of ${limit} bytes`);
    this.name = "MessageTooLargeError";
    this.limit = limit;
  }
}

/**
 * Splits a byte stream into JSON messages, one per line. It holds at most one unfinished line, and
 * throws MessageTooLargeError as soon as that line is longer than `maxLineBytes` (counted in bytes,
 * before any of it is decoded). Chunks are kept as they arrive and joined once per line, so a big
 * message costs one copy, not one per chunk.
 */
export class LineDecoder {
  readonly #max: number;
  #parts: Buffer[] = [];
  #pending = 0;

  constructor(maxLineBytes: number) {
    this.#max = maxLineBytes;
  }

  /** Bytes of the unfinished line held right now. */
  get buffered(): number {
    return this.#pending;
  }

  push(chunk: Buffer | string, onMessage: (msg: unknown) => void): void {
    const buf = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    let start = 0;
    for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
      const size = this.#pending + nl - start;
      if (size > this.#max) throw new MessageTooLargeError(this.#max);
      const tail = buf.subarray(start, nl);
      const line = this.#parts.length === 0 ? tail : Buffer.concat([...this.#parts, tail], size);
      this.#parts = [];
      this.#pending = 0;
      start = nl + 1;
      const text = line.toString("utf8");
      if (text.trim()) onMessage(JSON.parse(text));
    }
    if (start < buf.length) {
      this.#pending += buf.length - start;
      if (this.#pending > this.#max) throw new MessageTooLargeError(this.#max);
      // A copy, not a view: a view would keep the whole chunk (and what it was cut from) alive.
      this.#parts.push(Buffer.from(buf.subarray(start)));
    }
  }
}

export function encodeMessage(msg: ProxyMessage | ControlPlaneMessage): string {
  return JSON.stringify(msg) + "\n";
}
