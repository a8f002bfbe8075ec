// A batch's private view of the key space: reads fall through to the durable Keyspace, writes stay here.
// Transactions of one group commit are planned against it one after another (each sees the ones before
// it), and it is thrown away once the batch is on disk and applied to the Keyspace, or if writing failed.

import type { KeyValue } from "../store.ts";
import type { Keyspace } from "./keyspace.ts";
import { State } from "./state.ts";

export class Overlay extends State {
  private readonly base: Keyspace;
  /** null marks a key deleted in this batch. */
  private readonly kvs = new Map<string, KeyValue | null>();
  private readonly leases = new Map<number, number | null>();

  constructor(base: Keyspace) {
    super();
    this.base = base;
    this.revision = base.revision;
    this.nextLeaseId = base.nextLeaseId;
  }

  get(key: string): KeyValue | undefined {
    const own = this.kvs.get(key);
    if (own !== undefined) return own ?? undefined;
    return this.base.get(key);
  }

  keysWithPrefix(prefix: string): string[] {
    const out = this.base.keysWithPrefix(prefix).filter((key) => !this.kvs.has(key));
    for (const [key, kv] of this.kvs) if (kv && key.startsWith(prefix)) out.push(key);
    return out;
  }

  keysWithLease(id: number): string[] {
    const out = this.base.keysWithLease(id).filter((key) => !this.kvs.has(key));
    for (const [key, kv] of this.kvs) if (kv && kv.lease === id) out.push(key);
    return out;
  }

  leaseTtl(id: number): number | undefined {
    const own = this.leases.get(id);
    if (own !== undefined) return own ?? undefined;
    return this.base.leaseTtl(id);
  }

  protected setKv(kv: KeyValue): void {
    this.kvs.set(kv.key, kv);
  }

  protected removeKv(key: string): void {
    this.kvs.set(key, null);
  }

  protected setLease(id: number, ttl: number): void {
    this.leases.set(id, ttl);
  }

  protected removeLease(id: number): void {
    this.leases.set(id, null);
  }
}
