// The MVCC rules in one place: how a log record changes the key space and which watch events it produces.
// Both the durable key space and the per-batch overlay (see overlay.ts) extend this class, so a
// transaction is planned, committed and later replayed from the log by the very same code.

import type { KeyValue, WatchEvent } from "../store.ts";
import { StoreError } from "../store.ts";
import type { WalOp, WalRecord } from "./records.ts";

export abstract class State {
  revision = 0;
  /** Next lease id to hand out; ids are never reused, even across restarts. */
  nextLeaseId = 1;

  abstract get(key: string): KeyValue | undefined;
  /** Live keys starting with prefix, in no particular order. */
  abstract keysWithPrefix(prefix: string): string[];
  /** Live keys attached to the lease. */
  abstract keysWithLease(id: number): string[];
  /** TTL in seconds of a live lease, undefined if there is no such lease. */
  abstract leaseTtl(id: number): number | undefined;
  protected abstract setKv(kv: KeyValue): void;
  protected abstract removeKv(key: string): void;
  protected abstract setLease(id: number, ttl: number): void;
  protected abstract removeLease(id: number): void;

  /** Applies one record; returns the events it produced (empty for lease-only records). */
  apply(rec: WalRecord): WatchEvent[] {
    switch (rec.t) {
      case "txn":
        return this.applyOps(rec.rev, rec.ops);
      case "grant":
        this.setLease(rec.id, rec.ttl);
        this.nextLeaseId = Math.max(this.nextLeaseId, rec.id + 1);
        return [];
      case "revoke": {
        const events = rec.ops.length > 0 ? this.applyOps(rec.rev, rec.ops) : [];
        this.removeLease(rec.id);
        return events;
      }
    }
  }

  private applyOps(rev: number, ops: WalOp[]): WatchEvent[] {
    if (rev !== this.revision + 1) {
      throw new StoreError("corrupt", `record at revision ${rev} does not follow revision ${this.revision}`);
    }
    const events: WatchEvent[] = [];
    for (const op of ops) {
      const prevKv = this.get(op.key);
      if (op.op === "put") {
        const kv: KeyValue = Object.freeze({
          key: op.key,
          value: op.value,
          createRevision: prevKv ? prevKv.createRevision : rev,
          modRevision: rev,
          version: prevKv ? prevKv.version + 1 : 1,
          lease: op.lease,
        });
        this.setKv(kv);
        events.push(prevKv ? { type: "put", kv, prevKv } : { type: "put", kv });
      } else if (prevKv) {
        this.removeKv(op.key);
        const kv: KeyValue = {
          key: op.key,
          value: "",
          createRevision: 0,
          modRevision: rev,
          version: 0,
          lease: 0,
        };
        events.push({ type: "delete", kv: Object.freeze(kv), prevKv });
      }
    }
    this.revision = rev;
    return events;
  }
}

export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
