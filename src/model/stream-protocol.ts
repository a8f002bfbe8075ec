// Messages of the proxy config stream (control plane port 15010): newline-delimited JSON over one
// long-lived HTTP/2 request, in both directions. The proxy authenticates with its mesh certificate.
//
//   proxy → cp   hello   once, first: who it is (workload address/ports/labels) and the version it runs
//   cp → proxy   snapshot whenever that proxy's compiled config changes (debounced)
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
  /** The local app's port. */
  appPort: number;
  labels?: Record<string, string>;
  zone?: string;
  /** Services the proxy reaches ("name" or "name.namespace"); absent = all. */
  reach?: string[];
  /** Version of the snapshot the proxy already runs (after a reconnect), if any. */
  version?: string;
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

export type ProxyMessage =
  HelloMessage | AckMessage | NackMessage | HealthMessage | ServingMessage | ByeMessage;

export interface SnapshotMessage {
  type: "snapshot";
  nonce: number;
  version: string;
  snapshot: ProxySnapshot;
}

export interface ErrorMessage {
  type: "error";
  code: string;
  message: string;
}

export type ControlPlaneMessage = SnapshotMessage | ErrorMessage;

export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Splits a byte stream into JSON messages, one per line. */
export class LineDecoder {
  #buf = "";
  push(chunk: string, onMessage: (msg: unknown) => void): void {
    this.#buf += chunk;
    if (this.#buf.length > MAX_MESSAGE_BYTES)
      throw new Error(`stream message exceeds ${MAX_MESSAGE_BYTES} bytes`);
    let nl: number;
    while ((nl = this.#buf.indexOf("\n")) >= 0) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      if (line.trim()) onMessage(JSON.parse(line));
    }
  }
}

export function encodeMessage(msg: ProxyMessage | ControlPlaneMessage): string {
  return JSON.stringify(msg) + "\n";
}
