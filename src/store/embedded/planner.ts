// Turns requests into log records. Planning is pure: it reads a State (the batch overlay) and returns
// the record to write, or none when the request would change nothing — an empty or no-op transaction
// does not bump the revision, exactly as in etcd. The caller applies the record to the overlay so that
// the next request of the same batch sees it.

import type { Compare, Op, TxnRequest } from "../store.ts";
import { StoreError } from "../store.ts";
import type { WalOp, WalRecord } from "./records.ts";
import type { State } from "./state.ts";

export function compareHolds(state: State, c: Compare): boolean {
  const kv = state.get(c.key);
  if (c.target === "exists") return (kv !== undefined) === c.value;
  // A missing key has revision and version 0, as in etcd.
  const actual = kv ? kv[c.target] : 0;
  switch (c.op) {
    case "=":
      return actual === c.value;
    case "!=":
      return actual !== c.value;
    case "<":
      return actual < c.value;
    case ">":
      return actual > c.value;
  }
}

function checkKey(key: unknown, what: string): void {
  if (typeof key !== "string" || (what === "key" && key === "")) {
    throw new RangeError(`txn: ${what} must be a${what === "key" ? " non-empty" : ""} string`);
  }
}

/**
 * Resolves the chosen branch into writes. Ops see the ones before them in the same transaction, so
 * "put a; deletePrefix ''" deletes a, and deleting a missing key writes nothing.
 */
function resolveOps(state: State, ops: Op[]): WalOp[] {
  const out: WalOp[] = [];
  /** key → exists after the ops resolved so far (for keys this transaction touched). */
  const touched = new Map<string, boolean>();
  const exists = (key: string) => touched.get(key) ?? state.get(key) !== undefined;
  for (const op of ops) {
    if (op.type === "put") {
      checkKey(op.key, "key");
      if (typeof op.value !== "string") throw new RangeError(`txn: value of ${op.key} must be a string`);
      const lease = op.lease ?? 0;
      if (lease !== 0 && state.leaseTtl(lease) === undefined) {
        throw new StoreError("lease_not_found", `lease ${lease} not found (put ${op.key})`);
      }
      out.push({ op: "put", key: op.key, value: op.value, lease });
      touched.set(op.key, true);
    } else if (op.type === "delete") {
      checkKey(op.key, "key");
      if (!exists(op.key)) continue;
      out.push({ op: "del", key: op.key });
      touched.set(op.key, false);
    } else {
      checkKey(op.prefix, "prefix");
      const keys = new Set(state.keysWithPrefix(op.prefix));
      for (const [key, live] of touched) {
        if (!key.startsWith(op.prefix)) continue;
        if (live) keys.add(key);
        else keys.delete(key);
      }
      for (const key of [...keys].sort()) {
        out.push({ op: "del", key });
        touched.set(key, false);
      }
    }
  }
  return out;
}

export function planTxn(state: State, req: TxnRequest): { succeeded: boolean; record?: WalRecord } {
  const succeeded = (req.compares ?? []).every((c) => compareHolds(state, c));
  const ops = resolveOps(state, (succeeded ? req.success : req.failure) ?? []);
  if (ops.length === 0) return { succeeded };
  return { succeeded, record: { t: "txn", rev: state.revision + 1, ops } };
}

export function planLeaseGrant(state: State, ttlSeconds: number): Extract<WalRecord, { t: "grant" }> {
  return { t: "grant", id: state.nextLeaseId, ttl: ttlSeconds };
}

/** undefined when the lease does not exist (expired, revoked or never granted). */
export function planLeaseRevoke(state: State, id: number): WalRecord | undefined {
  if (state.leaseTtl(id) === undefined) return undefined;
  const ops: WalOp[] = state
    .keysWithLease(id)
    .sort()
    .map((key) => ({ op: "del", key }));
  return { t: "revoke", id, rev: ops.length > 0 ? state.revision + 1 : 0, ops };
}
