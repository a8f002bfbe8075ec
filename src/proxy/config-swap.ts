// How a new snapshot goes into service in the listeners: in two steps, so that it happens in every
// listener or in none. A listener's `prepare(snapshot)` compiles what it needs (routing table,
// balancers) without touching what requests use now, and throws if it cannot; it returns the
// `commit` that swaps the compiled state in (or undefined: nothing to change). The proxy's snapshot
// cell (agent/snapshot-cell.ts) prepares in every listener first and commits only when all
// succeeded, and only then does the config client ACK; a failure is NACKed naming the listener,
// and every listener keeps running the previous snapshot.
//
// A commit must not fail: it only assigns what prepare built. Preparing may still touch bookkeeping
// shared with the running state (pools marked in use until the next sweep, limits carried over by
// cluster name); the tables that requests read change only on commit.

import type { ProxySnapshot } from "../model/snapshot.ts";
import type { Source } from "./types.ts";

/** Compiles a snapshot for one listener; throws when it cannot. Returns the swap, if anything changes. */
export type PrepareSnapshot = (snapshot: ProxySnapshot) => (() => void) | undefined;

/** A snapshot source that lets listeners take part in the all-or-nothing swap. */
export interface StagedSnapshots extends Source<ProxySnapshot> {
  /** `name` says which listener failed in a NACK ("outbound listener"). Returns the unsubscribe. */
  stage(name: string, prepare: PrepareSnapshot): () => void;
}

/**
 * Follows a listener's snapshots: staged when the source supports it (the running proxy), else (a
 * plain Cell, as in listener tests) prepared and committed on each value, a failure logged and the
 * previous snapshot kept.
 */
export function followSnapshots(
  source: Source<ProxySnapshot>,
  name: string,
  prepare: PrepareSnapshot,
  log?: (msg: string) => void,
): () => void {
  if (isStaged(source)) return source.stage(name, prepare);
  return source.subscribe((s) => applyOrLog(name, prepare, s, log));
}

/** Prepare and commit at once (a listener's first snapshot, or a plain source). */
export function applyOrLog(
  name: string,
  prepare: PrepareSnapshot,
  s: ProxySnapshot,
  log?: (msg: string) => void,
): void {
  let commit: (() => void) | undefined;
  try {
    commit = prepare(s);
  } catch (err) {
    log?.(`${name}: snapshot ${s.version} not applied: ${(err as Error).message}`);
    return;
  }
  commit?.();
}

function isStaged(s: Source<ProxySnapshot>): s is StagedSnapshots {
  return typeof (s as Partial<StagedSnapshots>).stage === "function";
}
