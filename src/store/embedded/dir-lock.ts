// One process per data directory. The lock is the file LOCK holding {pid, start}: the owner's pid and, on
// Linux, its start time from /proc (so a recycled pid — common in containers, where the control plane is
// often pid 1 — is not mistaken for the owner). The file is written under a temporary name and then
// hard-linked to LOCK, so LOCK never exists half-written. A lock whose owner is gone is stale and taken over.
// Opening the same directory twice in one process is refused too.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { StoreError } from "../store.ts";
import { ioError, isErrnoCode } from "./io.ts";

export const LOCK_FILE = "LOCK";

/** Directories locked by this process (by real path); a process-wide fact, hence module state. */
const heldHere = new Set<string>();

interface Owner {
  pid: number;
  start?: string;
}

function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime); the command name in field 2 may contain spaces, so count from its ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function isAlive(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if (!isErrnoCode(err, "EPERM")) return false;
  }
  const start = owner.start === undefined ? undefined : processStart(owner.pid);
  return start === undefined || start === owner.start;
}

async function readOwner(file: string): Promise<Owner | undefined> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, "utf8")) as Owner;
    return Number.isSafeInteger(parsed.pid) ? parsed : undefined;
  } catch (err) {
    if (isErrnoCode(err, "ENOENT")) return undefined;
    if (err instanceof SyntaxError) return { pid: -1 }; // unreadable content: nobody owns it
    throw ioError(`read ${file}`, err);
  }
}

/** Takes the lock on dir; resolves to the function that releases it. */
export async function lockDir(dir: string): Promise<() => Promise<void>> {
  const real = await fs.realpath(dir).catch((err: unknown) => {
    throw ioError(`resolve ${dir}`, err);
  });
  if (heldHere.has(real)) throw new StoreError("io", `data directory ${dir} is already open in this process`);
  const file = path.join(real, LOCK_FILE);
  const me: Owner = { pid: process.pid, start: processStart(process.pid) };
  const tmp = path.join(real, `${LOCK_FILE}.${process.pid}.${randomBytes(4).toString("hex")}`);
  try {
    await fs.writeFile(tmp, JSON.stringify(me), { flush: true });
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.link(tmp, file);
        break;
      } catch (err) {
        if (!isErrnoCode(err, "EEXIST") || attempt >= 3) throw err;
      }
      const owner = await readOwner(file);
      const ownedByMe = owner?.pid === process.pid && owner.start === me.start;
      if (owner && !ownedByMe && isAlive(owner)) {
        throw new StoreError("io", `data directory ${dir} is locked by running process ${owner.pid}`);
      }
      await fs.rm(file, { force: true }); // stale: its owner died without releasing it
    }
  } catch (err) {
    throw ioError(`lock ${dir}`, err);
  } finally {
    await fs.rm(tmp, { force: true }).catch(() => {});
  }
  heldHere.add(real);
  return async () => {
    heldHere.delete(real);
    await fs.rm(file, { force: true }).catch((err: unknown) => {
      throw ioError(`unlock ${dir}`, err);
    });
  };
}
