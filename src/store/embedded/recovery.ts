// Opening a data directory: load the snapshot, replay every log file it does not contain, cut off a torn
// tail, and clear away what an interrupted compaction left behind. Files in the directory:
//
//   LOCK                  owner of the directory (dir-lock.ts)
//   snapshot              state as of the start of log <logSeq>      (snapshot-file.ts)
//   snapshot.tmp          a snapshot being written; never read, deleted here
//   wal-<seq>.log         log files; those with seq >= snapshot's logSeq are live, older ones are leftovers
//
// Only the newest log may end in a torn record: logs are switched only after a successful fsync.

import * as fs from "node:fs/promises";
import * as path from "node:path";
import { StoreError } from "../store.ts";
import { scanFrames } from "./frame.ts";
import { fsyncDir, io } from "./io.ts";
import { Keyspace } from "./keyspace.ts";
import { LogFile, logFileName, parseLogFileName } from "./log-file.ts";
import { parseWalRecord } from "./records.ts";
import { SNAPSHOT_TMP, readSnapshot } from "./snapshot-file.ts";

export interface Recovered {
  keyspace: Keyspace;
  /** The newest log, open for appending. */
  log: LogFile;
  /** Records in live logs, i.e. written since the snapshot. */
  recordsSinceSnapshot: number;
  /** Bytes cut off the end of the newest log (a write that was never acknowledged). */
  truncatedBytes: number;
}

async function replayLog(file: string, keyspace: Keyspace, isNewest: boolean) {
  const buf = await io(`read ${file}`, () => fs.readFile(file));
  const { frames, validLength } = scanFrames(buf, file);
  if (validLength < buf.length && !isNewest) {
    throw new StoreError(
      "corrupt",
      `${file}: invalid record at offset ${validLength} in a log that is not the newest`,
    );
  }
  for (const frame of frames) {
    const where = `${file} at offset ${frame.offset}`;
    try {
      keyspace.apply(parseWalRecord(frame.payload, where));
    } catch (err) {
      if (err instanceof StoreError && !err.message.startsWith(file)) {
        throw new StoreError(err.code, `${where}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
  return { records: frames.length, validLength, torn: buf.length - validLength };
}

export async function recover(dir: string): Promise<Recovered> {
  await io(`remove ${SNAPSHOT_TMP}`, () => fs.rm(path.join(dir, SNAPSHOT_TMP), { force: true }));
  const snapshot = await readSnapshot(dir);
  const keyspace = snapshot ? Keyspace.fromSnapshot(snapshot) : new Keyspace();
  const firstLive = snapshot?.logSeq ?? 1;

  const names = await io(`list ${dir}`, () => fs.readdir(dir));
  const seqs = names
    .map(parseLogFileName)
    .filter((s): s is number => s !== undefined)
    .sort((a, b) => a - b);
  const stale = seqs.filter((s) => s < firstLive);
  const live = seqs.filter((s) => s >= firstLive);
  live.forEach((seq, i) => {
    if (seq !== firstLive + i) {
      const missing = path.join(dir, logFileName(firstLive + i));
      throw new StoreError("corrupt", `${missing} is missing (found logs ${live.join(", ")})`);
    }
  });
  if (live.length === 0 && (snapshot || seqs.length > 0)) {
    throw new StoreError("corrupt", `${path.join(dir, logFileName(firstLive))} is missing`);
  }

  let records = 0;
  let truncatedBytes = 0;
  let newestValid = 0;
  for (const seq of live) {
    const isNewest = seq === live[live.length - 1];
    const r = await replayLog(path.join(dir, logFileName(seq)), keyspace, isNewest);
    records += r.records;
    if (isNewest) {
      newestValid = r.validLength;
      truncatedBytes = r.torn;
    }
  }

  // Leftovers of a compaction that was killed after its snapshot became durable.
  for (const seq of stale) {
    await io(`remove old log`, () => fs.rm(path.join(dir, logFileName(seq)), { force: true }));
  }
  if (stale.length > 0) await fsyncDir(dir);

  const log =
    live.length === 0
      ? await LogFile.create(dir, firstLive)
      : await LogFile.openForAppend(dir, live[live.length - 1], newestValid);
  return { keyspace, log, recordsSinceSnapshot: records, truncatedBytes };
}
