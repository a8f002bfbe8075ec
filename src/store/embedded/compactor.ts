// Owns the current log file and keeps the log from growing without bound: after `compactEvery` records it
// starts a new log and writes a snapshot of the state as of that switch.
//
// Steps, and what a kill -9 after each one leaves behind (recovery.ts handles every case):
//
//   1. create wal-<N+1>, fsync the directory      wal-<N+1> may exist, empty or not; the old snapshot
//      and switch appends to it                   still names an earlier log, so replay reads wal-…N and
//                                                 then wal-<N+1>: nothing is lost, order is kept.
//   2. write snapshot.tmp (logSeq N+1), fsync it  snapshot.tmp is ignored and deleted on open.
//   3. rename snapshot.tmp → snapshot             the directory holds either the old or the new snapshot;
//                                                 both are complete, and every log either needs is present.
//   4. fsync the directory                        the new snapshot is now durable; logs before N+1 are
//                                                 redundant.
//   5. delete wal-<N> and older, fsync directory  leftovers of an interrupted step 5 are deleted on open.
//
// The snapshot's content is captured synchronously at the switch in step 1, while no batch is in flight,
// so it is exactly "every record in logs before N+1". Steps 2–5 run in the background; writes continue
// into wal-<N+1> meanwhile. If they fail, nothing is lost (old snapshot and logs stay); the next
// compaction tries again.

import { channel } from "node:diagnostics_channel";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fsyncDir, io } from "./io.ts";
import type { Keyspace } from "./keyspace.ts";
import { LogFile, parseLogFileName } from "./log-file.ts";
import type { SnapshotData } from "./records.ts";
import { writeSnapshot } from "./snapshot-file.ts";

/** Published when a background snapshot fails: { error, dir }. The store keeps working on its logs. */
export const compactionErrorChannel = channel("weft:store:compaction-error");

export class Compactor {
  private readonly dir: string;
  private readonly compactEvery: number;
  private current: LogFile;
  private records: number;
  private inFlight: Promise<void> | undefined;

  constructor(dir: string, log: LogFile, recordsSinceSnapshot: number, compactEvery: number) {
    this.dir = dir;
    this.current = log;
    this.records = recordsSinceSnapshot;
    this.compactEvery = compactEvery;
  }

  /** The log file appends go to. */
  get log(): LogFile {
    return this.current;
  }

  recordsWritten(n: number): void {
    this.records += n;
  }

  /** Call between batches only (no append in flight). Resolves once the new log is in place. */
  async maybeCompact(keyspace: Keyspace): Promise<void> {
    if (this.records < this.compactEvery || this.inFlight) return;
    const next = await LogFile.create(this.dir, this.current.seq + 1);
    const old = this.current;
    this.current = next;
    this.records = 0;
    const snapshot = keyspace.toSnapshot(next.seq);
    await old.close().catch(() => {}); // everything in it is already fsynced
    this.inFlight = this.snapshotAndPrune(snapshot).finally(() => (this.inFlight = undefined));
  }

  /** Waits for a background snapshot, then closes the log. */
  async close(): Promise<void> {
    await this.inFlight;
    await this.current.close();
  }

  private async snapshotAndPrune(snapshot: SnapshotData): Promise<void> {
    try {
      await writeSnapshot(this.dir, snapshot);
      const names = await io(`list ${this.dir}`, () => fs.readdir(this.dir));
      const obsolete = names.filter((n) => (parseLogFileName(n) ?? Infinity) < snapshot.logSeq);
      for (const name of obsolete) {
        await io(`remove ${name}`, () => fs.rm(path.join(this.dir, name), { force: true }));
      }
      if (obsolete.length > 0) await fsyncDir(this.dir);
    } catch (error) {
      if (compactionErrorChannel.hasSubscribers) compactionErrorChannel.publish({ error, dir: this.dir });
    }
  }
}
