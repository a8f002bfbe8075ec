// The embedded store: etcd's data model in one process, made durable by a write-ahead log.
//
// Write path (group commit): txn/lease calls queue a request and return a promise. One flush at a time
// takes every queued request, plans them in order against an Overlay (so each sees the ones before it),
// writes all resulting records with one write + one fdatasync, then applies them to the Keyspace,
// publishes watch events and settles the promises. Requests queued meanwhile form the next batch.
// Readers only ever see the Keyspace, i.e. data that is already on disk. If a write or fsync fails the
// store stops accepting writes (the log's tail is then unknown); reads keep working.

import type {
  Clock,
  KeyValue,
  RangeResponse,
  Store,
  TxnRequest,
  TxnResponse,
  WatchEvent,
  WatchOptions,
  Watcher,
} from "../store.ts";
import { StoreError } from "../store.ts";
import { encodeFrame } from "./frame.ts";
import type { Keyspace } from "./keyspace.ts";
import { LeaseTimers } from "./lease-timers.ts";
import type { LogFile } from "./log-file.ts";
import { Overlay } from "./overlay.ts";
import { planLeaseGrant, planLeaseRevoke, planTxn } from "./planner.ts";
import type { WalRecord } from "./records.ts";
import { Compactor } from "./compactor.ts";
import { WatchHub } from "./watch-hub.ts";

type Request =
  | { kind: "txn"; req: TxnRequest; resolve: (r: TxnResponse) => void; reject: (e: unknown) => void }
  | { kind: "grant"; ttl: number; resolve: (id: number) => void; reject: (e: unknown) => void }
  /** expired: revoked by its timer, so a lease that is already gone is not an error. */
  | { kind: "revoke"; id: number; expired: boolean; resolve: () => void; reject: (e: unknown) => void };

/** How to settle a planned request once its batch is on disk (or failed to get there). */
interface Settler {
  done: () => void;
  reject: (e: unknown) => void;
}

export interface EmbeddedStoreParts {
  dir: string;
  keyspace: Keyspace;
  log: LogFile;
  recordsSinceSnapshot: number;
  clock: Clock;
  historyLimit: number;
  compactEvery: number;
  unlock: () => Promise<void>;
}

export class EmbeddedStore implements Store {
  private readonly keyspace: Keyspace;
  private readonly hub: WatchHub;
  private readonly leases: LeaseTimers;
  private readonly compactor: Compactor;
  private readonly unlock: () => Promise<void>;
  private queue: Request[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  /** Set when a write failed; every later write is refused with it. */
  private failure: StoreError | undefined;

  constructor(parts: EmbeddedStoreParts) {
    this.keyspace = parts.keyspace;
    this.unlock = parts.unlock;
    this.hub = new WatchHub(parts.keyspace.revision, parts.historyLimit);
    this.compactor = new Compactor(parts.dir, parts.log, parts.recordsSinceSnapshot, parts.compactEvery);
    this.leases = new LeaseTimers(parts.clock, (id) => {
      this.enqueue({ kind: "revoke", id, expired: true, resolve: () => {}, reject: () => {} });
    });
    // Persisted leases get a fresh, full TTL.
    for (const [id, ttl] of parts.keyspace.leaseEntries()) this.leases.start(id, ttl);
  }

  revision(): number {
    return this.keyspace.revision;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.checkOpen();
    return this.keyspace.get(key);
  }

  async range(prefix: string): Promise<RangeResponse> {
    this.checkOpen();
    return { kvs: this.keyspace.range(prefix), revision: this.keyspace.revision };
  }

  txn(req: TxnRequest): Promise<TxnResponse> {
    return new Promise((resolve, reject) => this.enqueue({ kind: "txn", req, resolve, reject }));
  }

  put(key: string, value: string, opts?: { lease?: number }): Promise<TxnResponse> {
    return this.txn({ success: [{ type: "put", key, value, lease: opts?.lease }] });
  }

  async delete(key: string): Promise<TxnResponse & { deleted: number }> {
    const res = await this.txn({
      compares: [{ key, target: "exists", value: true }],
      success: [{ type: "delete", key }],
    });
    // The compare holds exactly when the key exists, and then the delete writes it.
    return { ...res, deleted: res.succeeded ? 1 : 0 };
  }

  watch(
    prefix: string,
    listener: (events: WatchEvent[], revision: number) => void,
    opts?: WatchOptions,
  ): Watcher {
    const current = this.keyspace.revision;
    const from = opts?.fromRevision !== undefined && opts.fromRevision > 0 ? opts.fromRevision : current + 1;
    const watcher = this.hub.watch(prefix, listener, from, opts?.onError);
    if (this.closed) queueMicrotask(() => this.hub.closeAll(new StoreError("closed", "store is closed")));
    return watcher;
  }

  async leaseGrant(ttlSeconds: number): Promise<{ id: number; ttl: number }> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
      throw new RangeError(`lease TTL must be a positive whole number of seconds, got ${ttlSeconds}`);
    }
    const id = await new Promise<number>((resolve, reject) =>
      this.enqueue({ kind: "grant", ttl: ttlSeconds, resolve, reject }),
    );
    return { id, ttl: ttlSeconds };
  }

  async leaseKeepAlive(id: number): Promise<{ ttl: number }> {
    this.checkOpen();
    const ttl = this.keyspace.leaseTtl(id) === undefined ? undefined : this.leases.refresh(id);
    if (ttl === undefined) throw new StoreError("lease_not_found", `lease ${id} not found`);
    return { ttl };
  }

  leaseRevoke(id: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.enqueue({ kind: "revoke", id, expired: false, resolve, reject }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.leases.stopAll();
    while (this.flushing) await this.flushing; // requests accepted before close still complete
    this.hub.closeAll(new StoreError("closed", "store is closed"));
    try {
      await this.compactor.close();
    } finally {
      await this.unlock();
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError("closed", "store is closed");
  }

  private enqueue(r: Request): void {
    if (this.closed) return r.reject(new StoreError("closed", "store is closed"));
    if (this.failure) return r.reject(this.failure);
    this.queue.push(r);
    // A microtask, so that requests issued in the same tick share one fsync.
    if (!this.flushing) this.flushing = Promise.resolve().then(() => this.flushLoop());
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.flush(batch);
        if (!this.failure) await this.compactor.maybeCompact(this.keyspace).catch((err) => this.fail(err));
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async flush(batch: Request[]): Promise<void> {
    if (this.failure) return batch.forEach((r) => r.reject(this.failure));
    const overlay = new Overlay(this.keyspace);
    const records: WalRecord[] = [];
    const settle: Settler[] = [];
    for (const r of batch) {
      try {
        const record = this.plan(overlay, r, settle);
        if (record) {
          overlay.apply(record);
          records.push(record);
        }
      } catch (err) {
        r.reject(err); // a request that cannot apply (e.g. unknown lease) fails alone
      }
    }
    if (records.length > 0) {
      try {
        await this.compactor.log.append(
          Buffer.concat(records.map((rec) => encodeFrame(JSON.stringify(rec)))),
        );
      } catch (err) {
        this.fail(err);
        return settle.forEach((s) => s.reject(this.failure));
      }
      this.compactor.recordsWritten(records.length);
      for (const rec of records) this.commit(rec);
    }
    for (const s of settle) s.done();
  }

  /** Plans one request against the batch overlay; pushes how to settle it once the batch is durable. */
  private plan(overlay: Overlay, r: Request, settle: Settler[]): WalRecord | undefined {
    switch (r.kind) {
      case "txn": {
        const { succeeded, record } = planTxn(overlay, r.req);
        const revision = record && record.t === "txn" ? record.rev : overlay.revision;
        settle.push({ done: () => r.resolve({ succeeded, revision }), reject: r.reject });
        return record;
      }
      case "grant": {
        const record = planLeaseGrant(overlay, r.ttl);
        settle.push({ done: () => r.resolve(record.id), reject: r.reject });
        return record;
      }
      case "revoke": {
        const record = planLeaseRevoke(overlay, r.id);
        if (!record && !r.expired) throw new StoreError("lease_not_found", `lease ${r.id} not found`);
        settle.push({ done: r.resolve, reject: r.reject });
        return record;
      }
    }
  }

  /** Applies a record that is on disk: Keyspace, watchers, lease timers. */
  private commit(rec: WalRecord): void {
    const events = this.keyspace.apply(rec);
    if (events.length > 0) this.hub.publish(this.keyspace.revision, events);
    if (rec.t === "grant") this.leases.start(rec.id, rec.ttl);
    if (rec.t === "revoke") this.leases.stop(rec.id);
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    const detail = err instanceof Error ? err.message : String(err);
    this.failure = new StoreError("io", `store stopped accepting writes after a disk error: ${detail}`, {
      cause: err,
    });
    for (const r of this.queue.splice(0)) r.reject(this.failure);
  }
}
