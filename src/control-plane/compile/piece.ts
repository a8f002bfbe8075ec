// A compiled piece of configuration (one Service's outbound entry, one cluster) with its JSON encoding
// and a content hash, made once and shared by every proxy snapshot that uses it. A snapshot's version
// is derived from its pieces' hashes plus its own parts (compile.ts), and its wire encoding is the
// concatenation of its pieces' encodings (`encodeSnapshot`), so neither is redone per proxy. On the
// wire the shared part (a view's encoding) travels as one Buffer written by reference to every proxy's
// stream (`snapshotParts`): writing it as a string would have each stream copy it into native memory
// of its own until sent — proxies × mesh bytes of malloc during a push round, which the allocator
// then keeps.

import { createHash } from "node:crypto";
import type { ProxySnapshot } from "../../model/snapshot.ts";

export interface Piece<T> {
  readonly value: T;
  /** JSON.stringify(value). */
  readonly json: string;
  /** Content hash of `json`. */
  readonly hash: string;
}

export function piece<T>(value: T): Piece<T> {
  const json = JSON.stringify(value);
  return { value, json, hash: hashOf(json) };
}

export function hashOf(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/** A snapshot's JSON in consecutive parts: the proxy's own (strings), shared ones (UTF-8 Buffers). */
export type EncodedParts = readonly (string | Buffer)[];

/**
 * How to encode each snapshot from its pieces (a snapshot is never mutated). Only the recipe is kept,
 * not the encoded string: concatenating shared encodings is cheap, and holding every proxy's whole
 * encoding would make memory grow with proxies × mesh size.
 */
const encodings = new WeakMap<ProxySnapshot, () => EncodedParts>();

/** Registers how to encode `snapshot` without JSON.stringify of the whole value (compile.ts). */
export function setEncoding(snapshot: ProxySnapshot, build: () => EncodedParts): void {
  encodings.set(snapshot, build);
}

/** JSON.stringify(snapshot) in parts, shared ones as the very Buffers every snapshot of a view uses. */
export function snapshotParts(snapshot: ProxySnapshot): EncodedParts {
  const build = encodings.get(snapshot);
  return build === undefined ? [JSON.stringify(snapshot)] : build();
}

/** JSON.stringify(snapshot), from its pieces' cached encodings when the compiler registered them. */
export function encodeSnapshot(snapshot: ProxySnapshot): string {
  return snapshotParts(snapshot)
    .map((p) => (typeof p === "string" ? p : p.toString("utf8")))
    .join("");
}

/** A snapshot's entry maps as pieces, in snapshot order (a prepared-state.ts View satisfies it). */
export interface SnapshotPieces {
  readonly outbound: readonly (readonly [string, Piece<unknown>])[];
  readonly clusters: readonly (readonly [string, Piece<unknown>])[];
  /** `"outbound":{…},"clusters":{…}` in JSON. */
  encoding(): string | Buffer;
}

/** Each compiled snapshot's pieces (shared by the snapshots of one view), for delta pushes. */
const pieces = new WeakMap<ProxySnapshot, SnapshotPieces>();

/** Registers the pieces `snapshot.outbound` and `snapshot.clusters` are made of (compile.ts). */
export function setPieces(snapshot: ProxySnapshot, of: SnapshotPieces): void {
  pieces.set(snapshot, of);
}

/** The pieces the compiler registered for `snapshot`, if any. */
export function piecesOf(snapshot: ProxySnapshot): SnapshotPieces | undefined {
  return pieces.get(snapshot);
}

/** `{"k1":json1,"k2":json2}` for pieces in order: JSON.stringify of the object they make up. */
export function encodeObject(entries: readonly (readonly [string, Piece<unknown>])[]): string {
  let out = "{";
  for (let i = 0; i < entries.length; i++) {
    const [key, p] = entries[i];
    out += (i === 0 ? "" : ",") + JSON.stringify(key) + ":" + p.json;
  }
  return out + "}";
}
