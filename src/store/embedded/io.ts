// Small file-system helpers shared by the log, the snapshot and the lock. Every failure that touches the
// disk leaves this module as a StoreError with code "io", with the original error as its cause.

import * as fs from "node:fs/promises";
import { StoreError } from "../store.ts";

/** Wraps a failed disk operation as StoreError("io"); StoreErrors pass through unchanged. */
export function ioError(what: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new StoreError("io", `${what}: ${detail}`, { cause: err });
}

/** Runs fn, turning any thrown error into StoreError("io") labelled with what was being done. */
export async function io<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw ioError(what, err);
  }
}

/**
 * Makes directory entries (creations, renames, unlinks) in dir durable. Windows cannot open a directory
 * for fsync and its file system journals metadata anyway, so it is skipped there.
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  await io(`fsync directory ${dir}`, async () => {
    const handle = await fs.open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}

/** Writes all of buf at position, looping over short writes. */
export async function writeFully(handle: fs.FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

export function isErrnoCode(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}
