// Per-entry versions of a snapshot (stream-protocol.ts's ResourceVersions): which version of each
// outbound entry and cluster a proxy holds. Both ends receive them from the other side — the proxy in
// snapshot and delta messages, the control plane in a reconnecting proxy's hello — so both check them
// here before trusting a single key: a plain object of exactly two sections, each a bounded number of
// short string keys mapped to short version strings. Nothing here throws on bad input.

import type { ResourceVersions } from "./stream-protocol.ts";

export interface ResourceVersionLimits {
  /** Entries per section. */
  maxEntries: number;
}

/** Longest entry key (a canonical service name or cluster name is far shorter) and version. */
export const MAX_RESOURCE_KEY_CHARS = 256;
export const MAX_RESOURCE_VERSION_CHARS = 64;
const VERSION = /^[A-Za-z0-9._:-]+$/;

export const SECTIONS = ["outbound", "clusters"] as const;
export type Section = (typeof SECTIONS)[number];

/** Undefined when `v` is well-formed ResourceVersions within `limits`; else what is wrong, at `where`. */
export function resourceVersionsProblem(
  v: unknown,
  where: string,
  limits: ResourceVersionLimits,
): string | undefined {
  if (!isPlainObject(v)) return `${where} must be an object with "outbound" and "clusters"`;
  for (const k of Object.keys(v))
    if (!(SECTIONS as readonly string[]).includes(k))
      return `${where} has an unknown section ${JSON.stringify(k.slice(0, 40))}`;
  for (const section of SECTIONS) {
    const m = v[section];
    if (!isPlainObject(m)) return `${where}.${section} must map entry names to versions`;
    const entries = Object.entries(m);
    if (entries.length > limits.maxEntries)
      return `${where}.${section} may hold at most ${limits.maxEntries} entries (got ${entries.length})`;
    for (const [key, version] of entries) {
      if (key.length === 0 || key.length > MAX_RESOURCE_KEY_CHARS)
        return `${where}.${section} has a key of ${key.length} characters (1 to ${MAX_RESOURCE_KEY_CHARS})`;
      if (
        typeof version !== "string" ||
        version.length === 0 ||
        version.length > MAX_RESOURCE_VERSION_CHARS ||
        !VERSION.test(version)
      )
        return `${where}.${section}[${JSON.stringify(key.slice(0, 64))}] must be a version string (letters, digits, ._:-, at most ${MAX_RESOURCE_VERSION_CHARS})`;
    }
  }
  return undefined;
}

/** Whether `v` names exactly the entries of `snapshot` (same keys in both sections). */
export function coversEntries(v: ResourceVersions, snapshot: unknown): boolean {
  if (!isPlainObject(snapshot)) return false;
  return SECTIONS.every((s) => {
    const entries = snapshot[s];
    return isPlainObject(entries) && sameKeys(v[s], entries);
  });
}

function sameKeys(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k));
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
