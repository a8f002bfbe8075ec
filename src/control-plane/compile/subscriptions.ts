// On-demand subscriptions, the compiler's side: which Service each name a proxy subscribed to means,
// with the rules of the proxy's host table (src/proxy/outbound/host-table.ts) — "name.ns",
// "name.ns.svc" and "name.ns.svc.cluster.local" name "name.ns"; a bare "name" means the one in the
// proxy's own namespace, else in "default", else the only one of that name anywhere. Names that mean
// nothing (yet) are the snapshot's `unresolved`, sorted; when a Service appears that one of them
// names, the snapshot cache compiles the proxy again (snapshot-cache.ts).

import { parseSubscription } from "../../model/subscription-names.ts";
import type { MeshIndex } from "./mesh-index.ts";

export interface Resolved {
  /** Service keys the names resolved to. */
  keys: string[];
  /** Names that resolved to nothing, sorted and without duplicates. */
  unresolved: string[];
}

/** Service keys by bare name, per revision of the index's key list (rebuilt when Services come or go). */
const byName = new WeakMap<readonly string[], Map<string, string[]>>();

function keysNamed(index: MeshIndex, name: string): readonly string[] {
  const keys = index.keys;
  let m = byName.get(keys);
  if (m === undefined) {
    m = new Map();
    for (const k of keys) {
      const n = k.slice(0, k.indexOf("."));
      const list = m.get(n);
      if (list === undefined) m.set(n, [k]);
      else list.push(k);
    }
    byName.set(keys, m);
  }
  return m.get(name) ?? [];
}

/** The Service key `name` means for a proxy in `ownNamespace`, if any. */
export function resolveSubscription(
  index: MeshIndex,
  name: string,
  ownNamespace: string,
): string | undefined {
  const parsed = parseSubscription(name);
  if (parsed === undefined) return undefined;
  if ("key" in parsed) return index.services.has(parsed.key) ? parsed.key : undefined;
  const own = `${parsed.bare}.${ownNamespace}`;
  if (index.services.has(own)) return own;
  const dflt = `${parsed.bare}.default`;
  if (index.services.has(dflt)) return dflt;
  const all = keysNamed(index, parsed.bare);
  return all.length === 1 ? all[0] : undefined;
}

export function resolveSubscriptions(
  index: MeshIndex,
  names: readonly string[],
  ownNamespace: string,
): Resolved {
  const keys: string[] = [];
  const unresolved = new Set<string>();
  for (const n of names) {
    const key = resolveSubscription(index, n, ownNamespace);
    if (key === undefined) unresolved.add(n);
    else keys.push(key);
  }
  return { keys, unresolved: [...unresolved].sort() };
}
