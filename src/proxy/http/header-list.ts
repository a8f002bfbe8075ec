// Edits on the flat header lists ([name, value, name, value, ...]) the proxy forwards, in place.
// Names compare case-insensitively. Used by the header-modifier filter (request side) and by the
// exchange (a route's response header modifier), so it lives below both.

import type { HeaderModifier } from "../../model/snapshot.ts";

/**
 * Applies a Gateway API header modifier: `set` replaces every value of a header (or adds it), `add`
 * appends one more value, `remove` drops it. `from` skips a protected prefix (the Host slot).
 */
export function modifyHeaders(list: string[], m: HeaderModifier, from = 0): void {
  if (m.remove !== undefined) for (const name of m.remove) removeHeader(list, name, from);
  if (m.set !== undefined) {
    for (const h of m.set) {
      removeHeader(list, h.name, from);
      list.push(h.name, h.value);
    }
  }
  if (m.add !== undefined) for (const h of m.add) list.push(h.name, h.value);
}

export function removeHeader(list: string[], lowerName: string, from = 0): void {
  for (let i = list.length - 2; i >= from; i -= 2) {
    if (list[i].length === lowerName.length && list[i].toLowerCase() === lowerName) list.splice(i, 2);
  }
}

export function hasHeader(list: string[], lower: string): boolean {
  for (let i = 0; i < list.length; i += 2) if (list[i].toLowerCase() === lower) return true;
  return false;
}
