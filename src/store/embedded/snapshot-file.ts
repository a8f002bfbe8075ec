// The snapshot: the whole state as of the start of log file `logSeq`, one frame in the file "snapshot".
// It is replaced atomically: written to "snapshot.tmp", fsynced, renamed over "snapshot", and the
// directory fsynced — so at every instant "snapshot" is either the complete old one or the complete new one.

import * as fs from "node:fs/promises";
import * as path from "node:path";
import { StoreError } from "../store.ts";
import { encodeFrame, scanFrames } from "./frame.ts";
import { fsyncDir, io, isErrnoCode, writeFully } from "./io.ts";
import type { SnapshotData } from "./records.ts";
import { parseSnapshot } from "./records.ts";

export const SNAPSHOT_FILE = "snapshot";
export const SNAPSHOT_TMP = "snapshot.tmp";

export async function writeSnapshot(dir: string, data: SnapshotData): Promise<void> {
  const tmp = path.join(dir, SNAPSHOT_TMP);
  const final = path.join(dir, SNAPSHOT_FILE);
  const frame = encodeFrame(JSON.stringify(data));
  await io(`write ${tmp}`, async () => {
    const handle = await fs.open(tmp, "w");
    try {
      await writeFully(handle, frame, 0);
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
  await io(`rename ${tmp} to ${final}`, () => fs.rename(tmp, final));
  await fsyncDir(dir);
}

/** The snapshot in dir, undefined if there is none yet. */
export async function readSnapshot(dir: string): Promise<SnapshotData | undefined> {
  const file = path.join(dir, SNAPSHOT_FILE);
  let buf: Buffer;
  try {
    buf = await fs.readFile(file);
  } catch (err) {
    if (isErrnoCode(err, "ENOENT")) return undefined;
    throw new StoreError("io", `read ${file}: ${(err as Error).message}`, { cause: err });
  }
  // The snapshot was fsynced before it got its name, so anything short of one whole frame is damage.
  const { frames, validLength } = scanFrames(buf, file);
  if (frames.length !== 1 || validLength !== buf.length) {
    throw new StoreError(
      "corrupt",
      `${file}: expected exactly one valid record, file is damaged at offset ${validLength}`,
    );
  }
  return parseSnapshot(frames[0].payload, `${file} at offset 0`);
}
