// The durable state: every key, every lease, the current revision. It changes only by applying records
// that are already on disk (at open, by replay; afterwards, once a batch's fsync has returned), so readers
// never see a write that a crash could still take back.

import type { KeyValue } from "../store.ts";
import type { SnapshotData } from "./records.ts";
import { State, compareKeys } from "./state.ts";

export class Keyspace extends State {
  private readonly kvs = new Map<string, KeyValue>();
  private readonly leases = new Map<number, number>();
  /** lease id → keys attached to it, so revoking a lease does not scan every key. */
  private readonly leaseKeys = new Map<number, Set<string>>();

  static fromSnapshot(snap: SnapshotData): Keyspace {
    const ks = new Keyspace();
    ks.revision = snap.revision;
    ks.nextLeaseId = snap.nextLeaseId;
    for (const [id, ttl] of snap.leases) ks.setLease(id, ttl);
    for (const kv of snap.kvs) ks.setKv(Object.freeze({ ...kv }));
    return ks;
  }

  toSnapshot(logSeq: number): SnapshotData {
    return {
      format: 1,
      logSeq,
      revision: this.revision,
      nextLeaseId: this.nextLeaseId,
      leases: [...this.leases],
      kvs: [...this.kvs.values()],
    };
  }

  get size(): number {
    return this.kvs.size;
  }

  get(key: string): KeyValue | undefined {
    return this.kvs.get(key);
  }

  /** Keys starting with prefix, sorted by key. */
  range(prefix: string): KeyValue[] {
    const out: KeyValue[] = [];
    for (const kv of this.kvs.values()) if (kv.key.startsWith(prefix)) out.push(kv);
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  keysWithPrefix(prefix: string): string[] {
    const out: string[] = [];
    for (const key of this.kvs.keys()) if (key.startsWith(prefix)) out.push(key);
    return out;
  }

  keysWithLease(id: number): string[] {
    return [...(this.leaseKeys.get(id) ?? [])];
  }

  leaseTtl(id: number): number | undefined {
    return this.leases.get(id);
  }

  /** Every live lease as [id, ttl seconds]. */
  leaseEntries(): [number, number][] {
    return [...this.leases];
  }

  protected setKv(kv: KeyValue): void {
    const prev = this.kvs.get(kv.key);
    if (prev && prev.lease !== 0 && prev.lease !== kv.lease) this.leaseKeys.get(prev.lease)?.delete(kv.key);
    if (kv.lease !== 0) {
      let keys = this.leaseKeys.get(kv.lease);
      if (!keys) this.leaseKeys.set(kv.lease, (keys = new Set()));
      keys.add(kv.key);
    }
    this.kvs.set(kv.key, kv);
  }

  protected removeKv(key: string): void {
    const prev = this.kvs.get(key);
    if (prev && prev.lease !== 0) this.leaseKeys.get(prev.lease)?.delete(key);
    this.kvs.delete(key);
  }

  protected setLease(id: number, ttl: number): void {
    this.leases.set(id, ttl);
  }

  protected removeLease(id: number): void {
    this.leases.delete(id);
    this.leaseKeys.delete(id);
  }
}
