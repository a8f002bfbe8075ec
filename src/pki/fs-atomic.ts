// Crash-safe file writes for key material: a reader sees the old file or the whole new one, never a
// prefix. The temporary file is created with its final mode, so a key is never briefly world-readable.
import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";

/** Writes via a temporary file, fsync and rename, so a crash never leaves a partial file. */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
}
