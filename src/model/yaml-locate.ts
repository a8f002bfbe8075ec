// Finding the source position of a field path in a parsed YAML document.
//
// Walks the document's node tree (not the plain JS value), so positions survive anchors, aliases and
// merge keys. A path that does not exist resolves to the nearest existing ancestor: a missing
// `spec.parentRefs[0].name` points at the `parentRefs[0]` entry, which is where the user must add it.

import { isAlias, isMap, isScalar, isSeq } from "yaml";
import type { Document, Node, Pair } from "yaml";
import type { FieldPath } from "./field-path.ts";

export interface Location {
  /** Offset of the node the path names, or of its nearest existing ancestor. */
  offset: number;
  /** Whether the whole path exists. */
  exact: boolean;
}

export interface LocateOptions {
  /** For a map entry, point at the key (`rulez:`) rather than its value. Used for unknown fields. */
  key?: boolean;
}

export function locate(doc: Document, path: FieldPath, options: LocateOptions = {}): Location {
  let node: unknown = doc.contents;
  let offset = start(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    node = deref(doc, node);
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node) && typeof seg === "string") {
      const pair = findPair(doc, node.items, seg, 0);
      if (!pair) return { offset, exact: false };
      const keyOffset = start(pair.key);
      const valueOffset = start(pair.value);
      // An empty value (`port:`) has no text of its own; its key is what the reader sees.
      const emptyValue = isScalar(pair.value) && pair.value.value === null && isEmptyRange(pair.value);
      const missingPos = keyOffset ?? offset;
      if (last && options.key && keyOffset !== undefined) return { offset: keyOffset, exact: true };
      if (last) return { offset: emptyValue ? missingPos : (valueOffset ?? missingPos), exact: true };
      // Deeper fields that are missing point at this entry's key: the line that names the parent.
      offset = missingPos;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg];
      const itemOffset = start(item);
      if (item === undefined || itemOffset === undefined) return { offset, exact: false };
      offset = itemOffset;
      if (last) return { offset, exact: true };
      node = item;
    } else {
      return { offset, exact: false };
    }
  }
  return { offset, exact: true };
}

/** Guard against alias cycles and billion-laughs style nesting while following merge keys. */
const MAX_MERGE_DEPTH = 16;

function findPair(doc: Document, items: Pair[], key: string, depth: number): Pair | undefined {
  for (const pair of items) {
    if (isScalar(pair.key) && String(pair.key.value) === key) return pair;
  }
  if (depth >= MAX_MERGE_DEPTH) return undefined;
  // YAML 1.1 merge keys (`<<: *defaults`): later maps in a list lose to earlier ones, as in toJS().
  for (const pair of items) {
    if (!isMergeKey(pair.key)) continue;
    const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
    for (const source of sources) {
      const map = deref(doc, source);
      if (!isMap(map)) continue;
      const found = findPair(doc, map.items, key, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

/** With `merge: true`, yaml resolves a plain `<<` key to a symbol. */
function isMergeKey(key: unknown): boolean {
  if (!isScalar(key)) return false;
  const v = key.value;
  return typeof v === "symbol" && v.description === "<<";
}

function deref(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function start(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}

function isEmptyRange(node: Node): boolean {
  return !!node.range && node.range[0] === node.range[1];
}
