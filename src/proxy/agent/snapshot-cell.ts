// The proxy's running snapshot: a Cell whose listeners take part in an all-or-nothing swap
// (../config-swap.ts). `publish` prepares the snapshot in every staged listener; if one throws, none
// is swapped and the reason (naming the listener) comes back for the config client to NACK; if all
// succeeded, all are swapped and only then do plain subscribers (health check, serving gate, admin)
// see the new snapshot. An ACK therefore means "compiled and running", never just "received".

import type { ProxySnapshot } from "../../model/snapshot.ts";
import type { PrepareSnapshot, StagedSnapshots } from "../config-swap.ts";
import { Cell } from "./cell.ts";

interface Stage {
  name: string;
  prepare: PrepareSnapshot;
}

export class SnapshotCell extends Cell<ProxySnapshot> implements StagedSnapshots {
  readonly #stages = new Set<Stage>();

  stage(name: string, prepare: PrepareSnapshot): () => void {
    const stage = { name, prepare };
    this.#stages.add(stage);
    return () => this.#stages.delete(stage);
  }

  /**
   * Puts `s` into service in every listener, or in none. Undefined when it runs; else why not,
   * e.g. "outbound listener: <compile error>".
   */
  publish(s: ProxySnapshot): string | undefined {
    const commits: { name: string; commit: () => void }[] = [];
    for (const { name, prepare } of this.#stages) {
      try {
        const commit = prepare(s);
        if (commit) commits.push({ name, commit });
      } catch (err) {
        return `${name}: ${(err as Error).message}`;
      }
    }
    // A commit only assigns what prepare built; one that throws is a bug. The others still swap (the
    // snapshot is then mostly running), and the failure is reported rather than ACKed.
    let broken: string | undefined;
    for (const { name, commit } of commits) {
      try {
        commit();
      } catch (err) {
        broken ??= `${name}: swapping in the compiled snapshot failed: ${(err as Error).message}`;
      }
    }
    super.set(s);
    return broken;
  }

  /** Same as publish, for code that only knows a Cell: a snapshot that cannot run throws. */
  override set(s: ProxySnapshot): void {
    const problem = this.publish(s);
    if (problem) throw new Error(problem);
  }
}
