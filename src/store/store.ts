// The store interface: shaped like etcd v3 (revisions, watch from a revision, leases) so that the
// embedded store, etcd and a Kubernetes source can sit behind it. Values are strings (JSON text).

export interface KeyValue {
  key: string;
  value: string;
  /** Revision at which the key was created (since its last deletion). */
  createRevision: number;
  /** Revision of the last change to the key. */
  modRevision: number;
  /** Number of changes since creation (1 on create). */
  version: number;
  /** Lease the key is attached to; 0 for none. */
  lease: number;
}

export interface WatchEvent {
  type: "put" | "delete";
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** A condition on a key, evaluated atomically in a transaction. */
export type Compare =
  | {
      key: string;
      target: "modRevision" | "createRevision" | "version";
      op: "=" | "!=" | "<" | ">";
      value: number;
    }
  | { key: string; target: "exists"; value: boolean };

export type Op =
  | { type: "put"; key: string; value: string; lease?: number }
  | { type: "delete"; key: string }
  /** Deletes every key starting with the prefix. */
  | { type: "deletePrefix"; prefix: string };

export interface TxnRequest {
  compares?: Compare[];
  success: Op[];
  failure?: Op[];
}

export interface TxnResponse {
  succeeded: boolean;
  /** Store revision after the transaction (unchanged if nothing was written). */
  revision: number;
}

export interface RangeResponse {
  kvs: KeyValue[];
  revision: number;
}

export interface Watcher {
  cancel(): void;
}

export interface WatchOptions {
  /** Deliver every event with revision >= fromRevision (history permitting), then live ones. Default: current revision + 1. */
  fromRevision?: number;
  /** Called once if the watch cannot continue (e.g. fromRevision was compacted away, or the store closed). */
  onError?: (err: StoreError) => void;
}

export interface Store {
  /** Current revision (0 for an empty store that never had a write). */
  revision(): number;
  get(key: string): Promise<KeyValue | undefined>;
  /** Keys starting with prefix, sorted by key. */
  range(prefix: string): Promise<RangeResponse>;
  /** Atomic: all ops of the chosen branch are applied at one new revision, durably, before it resolves. */
  txn(req: TxnRequest): Promise<TxnResponse>;
  put(key: string, value: string, opts?: { lease?: number }): Promise<TxnResponse>;
  delete(key: string): Promise<TxnResponse & { deleted: number }>;
  /** Events of one revision arrive together, in revision order. */
  watch(
    prefix: string,
    listener: (events: WatchEvent[], revision: number) => void,
    opts?: WatchOptions,
  ): Watcher;
  leaseGrant(ttlSeconds: number): Promise<{ id: number; ttl: number }>;
  /** Refreshes the lease's TTL; rejects with code "lease_not_found" if it expired or never existed. */
  leaseKeepAlive(id: number): Promise<{ ttl: number }>;
  /** Deletes the lease and every key attached to it. */
  leaseRevoke(id: number): Promise<void>;
  close(): Promise<void>;
}

export type StoreErrorCode = "compacted" | "lease_not_found" | "closed" | "corrupt" | "io";

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "StoreError";
  }
}

/** Clock used for lease expiry; injectable for tests. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { unref?(): void } | unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
