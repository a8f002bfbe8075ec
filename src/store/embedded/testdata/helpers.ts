// Test helpers for the embedded store: throw-away data directories and awaiting watch events.

import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { TestContext } from "node:test";
import type { Store, WatchEvent } from "../../store.ts";

/** A fresh directory, removed when the test ends. */
export async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "weft-store-"));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Resolves with the next batch of events under prefix (one revision). */
export function nextEvents(store: Store, prefix = ""): Promise<{ events: WatchEvent[]; revision: number }> {
  return new Promise((resolve, reject) => {
    const w = store.watch(
      prefix,
      (events, revision) => {
        w.cancel();
        resolve({ events, revision });
      },
      { onError: reject },
    );
  });
}

/** Lets queued microtasks and I/O callbacks run once. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
