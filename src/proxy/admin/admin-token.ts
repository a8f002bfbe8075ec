// The admin token: a random secret made when the proxy starts, which state-changing admin calls
// (POST /drain) must present. It is written to a file only the proxy's user can read (0600, in a
// directory made 0700), so whoever can read that file may drain the proxy — and a web page cannot.
// A new token every start: a token copied from an earlier run stops working.

import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../../pki/fs-atomic.ts";

/** Where the token goes unless told: `<dataDir>/proxy-admin-<port>.token`. */
export function defaultAdminTokenFile(dataDir: string, adminPort: number): string {
  return join(dataDir, `proxy-admin-${adminPort}.token`);
}

export function createAdminToken(): string {
  return randomBytes(32).toString("base64url");
}

export async function writeAdminTokenFile(path: string, token: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, `${token}\n`, 0o600);
}

/** Removes the file if it still holds this token (another proxy may have written it since). */
export async function removeAdminTokenFile(path: string, token: string): Promise<void> {
  const content = await readFile(path, "utf8").catch(() => undefined);
  if (content?.trim() === token) await rm(path, { force: true });
}
