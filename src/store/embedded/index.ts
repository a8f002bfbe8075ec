// The embedded store's entry point. See docs/store.md for the on-disk format and the crash-safety argument.

import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Clock, Store } from "../store.ts";
import { systemClock } from "../store.ts";
import { lockDir } from "./dir-lock.ts";
import { EmbeddedStore } from "./embedded-store.ts";
import { fsyncDir, io } from "./io.ts";
import { recover } from "./recovery.ts";

export { compactionErrorChannel } from "./compactor.ts";
export { listenerErrorChannel } from "./watch-hub.ts";

export interface EmbeddedStoreOptions {
  /** Time source for lease expiry. Default: the system clock. */
  clock?: Clock;
  /** Revisions of watch history kept in memory. Default 10 000. */
  historyLimit?: number;
  /** Log records between snapshots. Default 10 000. */
  compactEvery?: number;
}

/** mkdir -p, then makes each new directory's entry durable in its parent. */
async function createDir(dir: string): Promise<void> {
  const created = await io(`create data directory ${dir}`, () => fs.mkdir(dir, { recursive: true }));
  if (created === undefined) return;
  const top = path.resolve(created);
  for (let p = path.resolve(dir); p !== path.dirname(p); p = path.dirname(p)) {
    await fsyncDir(path.dirname(p));
    if (p === top) break;
  }
}

/**
 * Opens (creating if needed) the store in dir, replaying what is on disk. Rejects with StoreError "io" if
 * the directory cannot be used or another process has it open, and "corrupt" if its files are damaged
 * anywhere but the tail of the newest log.
 */
export async function openEmbeddedStore(dir: string, opts: EmbeddedStoreOptions = {}): Promise<Store> {
  const historyLimit = opts.historyLimit ?? 10_000;
  const compactEvery = opts.compactEvery ?? 10_000;
  if (!(historyLimit >= 1) || !(compactEvery >= 1)) {
    throw new RangeError("historyLimit and compactEvery must be at least 1");
  }
  await createDir(dir);
  const unlock = await lockDir(dir);
  try {
    const { keyspace, log, recordsSinceSnapshot } = await recover(dir);
    return new EmbeddedStore({
      dir,
      keyspace,
      log,
      recordsSinceSnapshot,
      clock: opts.clock ?? systemClock,
      historyLimit,
      compactEvery,
      unlock,
    });
  } catch (err) {
    await unlock();
    throw err;
  }
}
