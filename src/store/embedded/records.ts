// What the frames carry. The log holds one record per durable mutation — a transaction, a lease grant or
// a lease revocation — written as its *effects* (a deletePrefix becomes the list of keys it deleted), so
// replay is deterministic and needs no compare evaluation. The snapshot is the whole state at the start of
// one log file. Both are JSON: easy to inspect with a hex dump when something goes wrong.

import type { KeyValue } from "../store.ts";
import { StoreError } from "../store.ts";

export type WalOp = { op: "put"; key: string; value: string; lease: number } | { op: "del"; key: string };

export type WalRecord =
  /** Key writes at revision rev (always current revision + 1). */
  | { t: "txn"; rev: number; ops: WalOp[] }
  | { t: "grant"; id: number; ttl: number }
  /** Removes the lease and deletes its keys at rev; rev is 0 and ops empty when it had no keys. */
  | { t: "revoke"; id: number; rev: number; ops: WalOp[] };

export interface SnapshotData {
  format: 1;
  /** Sequence number of the first log file that is NOT contained in this snapshot. */
  logSeq: number;
  revision: number;
  nextLeaseId: number;
  /** [lease id, ttl seconds] */
  leases: [number, number][];
  kvs: KeyValue[];
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === "string";

function isWalOp(v: unknown): v is WalOp {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  if (o.op === "put") return isStr(o.key) && isStr(o.value) && isInt(o.lease);
  return o.op === "del" && isStr(o.key);
}

function isWalRecord(v: unknown): v is WalRecord {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  const opsOk = () => Array.isArray(r.ops) && r.ops.every(isWalOp);
  switch (r.t) {
    case "txn":
      return isInt(r.rev) && r.rev > 0 && opsOk();
    case "grant":
      return isInt(r.id) && r.id > 0 && isInt(r.ttl) && r.ttl > 0;
    case "revoke":
      return isInt(r.id) && isInt(r.rev) && opsOk();
    default:
      return false;
  }
}

function isKeyValue(v: unknown): v is KeyValue {
  if (typeof v !== "object" || v === null) return false;
  const kv = v as Record<string, unknown>;
  return (
    isStr(kv.key) &&
    isStr(kv.value) &&
    isInt(kv.createRevision) &&
    isInt(kv.modRevision) &&
    isInt(kv.version) &&
    isInt(kv.lease)
  );
}

function isSnapshot(v: unknown): v is SnapshotData {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    s.format === 1 &&
    isInt(s.logSeq) &&
    isInt(s.revision) &&
    isInt(s.nextLeaseId) &&
    Array.isArray(s.leases) &&
    s.leases.every((l) => Array.isArray(l) && l.length === 2 && isInt(l[0]) && isInt(l[1])) &&
    Array.isArray(s.kvs) &&
    s.kvs.every(isKeyValue)
  );
}

function parse<T>(payload: string, check: (v: unknown) => v is T, where: string, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch (err) {
    throw new StoreError("corrupt", `${where}: ${what} is not valid JSON despite a matching CRC`, {
      cause: err,
    });
  }
  if (!check(value)) throw new StoreError("corrupt", `${where}: ${what} has an unexpected shape`);
  return value;
}

/** where: "file at offset N", used in the error message. */
export function parseWalRecord(payload: string, where: string): WalRecord {
  return parse(payload, isWalRecord, where, "log record");
}

export function parseSnapshot(payload: string, where: string): SnapshotData {
  return parse(payload, isSnapshot, where, "snapshot");
}
