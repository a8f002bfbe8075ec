// Applying a delta message (stream-protocol.ts) to the snapshot a proxy runs: a pure function over an
// untrusted message. The result is a new snapshot value — the base's maps copied, the removed keys
// dropped, the sent entries set, the head replaced whole (every top-level field other than version,
// outbound and clusters comes from the delta, so fields this code does not know about travel too) —
// with its per-entry versions. The caller still runs the snapshot consistency check on the result
// before putting it into service, exactly as for a whole snapshot.
//
// It refuses, with a reason naming the field, a delta whose base is not the snapshot given ("base
// mismatch": the control plane then sends the whole snapshot), one that removes an entry the base
// does not have or sets and removes the same one, malformed sections, and entry versions that do not
// match the entries sent. Keys are copied with Object.fromEntries, so a "__proto__" key is a key.

import type { ProxySnapshot } from "./snapshot.ts";
import type { DeltaMessage, ResourceVersions } from "./stream-protocol.ts";
import { isPlainObject, resourceVersionsProblem, SECTIONS } from "./resource-versions.ts";

/** Entries a proxy accepts per section in one snapshot (its message is bounded at 16 MiB anyway). */
export const MAX_SNAPSHOT_ENTRIES = 100_000;

export type DeltaResult =
  | { snapshot: ProxySnapshot; resources: ResourceVersions | undefined; error?: undefined }
  | { error: string; baseMismatch?: boolean };

/**
 * `base` with `msg` applied. `baseResources`: the base's entry versions, if known (the result's are
 * then known too; else undefined, and the proxy's next hello carries none).
 */
export function applyDelta(
  base: ProxySnapshot | undefined,
  baseResources: ResourceVersions | undefined,
  msg: DeltaMessage,
): DeltaResult {
  if (typeof msg.version !== "string" || msg.version.length === 0 || msg.version.length > 128)
    return { error: "delta.version must be a version string" };
  if (typeof msg.base !== "string") return { error: "delta.base must be a version string" };
  if (base === undefined || msg.base !== base.version)
    return {
      error: `base mismatch: the delta applies to ${JSON.stringify(msg.base.slice(0, 64))}, this proxy runs ${base ? JSON.stringify(String(base.version).slice(0, 64)) : "none"}`,
      baseMismatch: true,
    };
  if (!isPlainObject(msg.head)) return { error: "delta.head must be an object" };
  for (const k of ["version", ...SECTIONS])
    if (Object.hasOwn(msg.head, k)) return { error: `delta.head must not carry ${k}` };
  const problem = resourceVersionsProblem(msg.resources, "delta.resources", {
    maxEntries: MAX_SNAPSHOT_ENTRIES,
  });
  if (problem) return { error: problem };
  if (!isPlainObject(msg.removed)) return { error: "delta.removed must be an object" };

  const out: Partial<Record<(typeof SECTIONS)[number], Record<string, unknown>>> = {};
  const versions: Partial<ResourceVersions> = {};
  for (const section of SECTIONS) {
    const set = msg[section];
    if (!isPlainObject(set)) return { error: `delta.${section} must be an object` };
    const removed = msg.removed[section];
    if (!Array.isArray(removed)) return { error: `delta.removed.${section} must be a list` };
    const have = base[section] as unknown;
    // The base may be a whole snapshot of the same batch, not checked yet.
    if (!isPlainObject(have)) return { error: `the base snapshot's ${section} is not an object` };
    const haveCount = Object.keys(have).length;
    if (removed.length > haveCount)
      return { error: `delta.removed.${section} names ${removed.length} entries; the base has ${haveCount}` };
    const gone = new Set<string>();
    for (const [i, k] of removed.entries()) {
      if (typeof k !== "string") return { error: `delta.removed.${section}[${i}] must be a string` };
      if (!Object.hasOwn(have, k))
        return { error: `delta.removed.${section}[${i}] ${show(k)} is not in the base` };
      if (Object.hasOwn(set, k)) return { error: `delta.${section} both sets and removes ${show(k)}` };
      gone.add(k);
    }
    const sentVersions = msg.resources[section];
    const setKeys = Object.keys(set);
    if (
      setKeys.length !== Object.keys(sentVersions).length ||
      setKeys.some((k) => !Object.hasOwn(sentVersions, k))
    )
      return { error: `delta.resources.${section} must give the version of exactly the entries sent` };
    if (haveCount - gone.size + setKeys.length > MAX_SNAPSHOT_ENTRIES)
      return { error: `delta.${section}: more than ${MAX_SNAPSHOT_ENTRIES} entries` };
    // The base's order for the entries kept (changed ones in place), then the new ones.
    const merged: [string, unknown][] = [];
    for (const [k, v] of Object.entries(have))
      if (!gone.has(k)) merged.push([k, Object.hasOwn(set, k) ? set[k] : v]);
    for (const k of setKeys) if (!Object.hasOwn(have, k)) merged.push([k, set[k]]);
    out[section] = Object.fromEntries(merged);
    if (baseResources !== undefined) {
      const v: [string, string][] = [];
      for (const [k] of merged)
        v.push([k, Object.hasOwn(sentVersions, k) ? sentVersions[k] : baseResources[section][k]]);
      versions[section] = Object.fromEntries(v);
    }
  }
  const snapshot = {
    ...msg.head,
    version: msg.version,
    outbound: out.outbound,
    clusters: out.clusters,
  } as unknown as ProxySnapshot;
  const resources =
    baseResources === undefined ? undefined : { outbound: versions.outbound!, clusters: versions.clusters! };
  // A base whose versions did not cover its entries would leave holes: then the versions are unknown.
  const complete =
    resources !== undefined &&
    SECTIONS.every((s) => Object.values(resources[s]).every((x) => typeof x === "string"));
  return { snapshot, resources: complete ? resources : undefined };
}

function show(k: string): string {
  return JSON.stringify(k.slice(0, 64));
}
