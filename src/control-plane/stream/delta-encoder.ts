// Encodes what the config stream sends a proxy: a delta from what the proxy holds to its new snapshot
// (entries added or changed, whole, with their versions; keys removed; the head whole), or the whole
// snapshot with its entries' versions when no delta can be made or the delta would be the bigger one.
//
// An entry's version is its compiled piece's content hash (compile/piece.ts): the compiler registers
// each snapshot's pieces, and every unscoped proxy of a namespace shares one set of them (a view), so
// the entry → hash maps and the encoded `resources` are made once per view, and the body of a delta
// (everything but the per-proxy head, version and nonce) once per pair of views, held weakly: a
// change pushed to N proxies that went from the same view to the same view is diffed and encoded
// once. `encoded` counts those encodings (tests read it).
//
// What a proxy holds is described by a Held: a version and its entries' hashes — the shared maps of
// the snapshot last sent (O(1) per proxy), or, for a proxy resuming after a reconnect, the map its
// hello carried (checked by the caller: model/resource-versions.ts).

import type { ProxySnapshot } from "../../model/snapshot.ts";
import type { ResourceVersions, SnapshotMessage } from "../../model/stream-protocol.ts";
import {
  encodeObject,
  piece,
  piecesOf,
  snapshotParts,
  type EncodedParts,
  type SnapshotPieces,
} from "../compile/piece.ts";

export interface EntryHashes {
  readonly outbound: ReadonlyMap<string, string>;
  readonly clusters: ReadonlyMap<string, string>;
}

/** What a proxy runs, as far as deltas go. */
export interface Held {
  version: string;
  hashes: EntryHashes;
}

interface Prepared {
  hashes: EntryHashes;
  /** `{"outbound":{key:hash,…},"clusters":{…}}`. */
  resources: string;
}

export interface Encoded {
  /** The message's line, in parts (a whole snapshot's shared Buffers as they are). */
  parts: EncodedParts;
  /** A delta (else the whole snapshot). */
  delta: boolean;
}

export class DeltaEncoder {
  /** Delta bodies encoded (once per pair of views, however many proxies make the same move). */
  encoded = 0;
  readonly #prepared = new WeakMap<SnapshotPieces, Prepared>();
  /** Pieces made here for snapshots the compiler registered none for (hand-built ones in tests). */
  readonly #made = new WeakMap<ProxySnapshot, SnapshotPieces>();
  /** Delta bodies by (held hashes, new pieces); null: the whole snapshot is smaller. */
  readonly #bodies = new WeakMap<EntryHashes, WeakMap<SnapshotPieces, string | null>>();

  /** What a proxy holds once it runs `snapshot`: shared by every snapshot of the same view. */
  held(snapshot: ProxySnapshot): Held {
    return { version: snapshot.version, hashes: this.#prepare(this.#pieces(snapshot)).hashes };
  }

  /** What a proxy holds by its own account (a hello's version and resources, already checked). */
  fromHello(version: string, resources: ResourceVersions): Held {
    return {
      version,
      hashes: {
        outbound: new Map(Object.entries(resources.outbound)),
        clusters: new Map(Object.entries(resources.clusters)),
      },
    };
  }

  /** The line that brings a proxy holding `held` (undefined: unknown) to `snapshot`. */
  encode(nonce: number, snapshot: ProxySnapshot, held: Held | undefined): Encoded {
    const pieces = this.#pieces(snapshot);
    const prepared = this.#prepare(pieces);
    const body = held === undefined ? null : this.#body(held.hashes, pieces, prepared);
    if (body === null)
      return { parts: snapshotMessageParts(nonce, snapshot, prepared.resources), delta: false };
    const { version, outbound: _o, clusters: _c, ...head } = snapshot;
    const start = JSON.stringify({ type: "delta", nonce, version, base: held!.version, head });
    return { parts: [`${start.slice(0, -1)},${body}}\n`], delta: true };
  }

  #body(old: EntryHashes, pieces: SnapshotPieces, prepared: Prepared): string | null {
    let byNew = this.#bodies.get(old);
    if (byNew === undefined) this.#bodies.set(old, (byNew = new WeakMap()));
    let body = byNew.get(pieces);
    if (body !== undefined) return body;
    this.encoded++;
    const parts: string[] = [];
    const removed: string[] = [];
    const versions: string[] = [];
    for (const section of ["outbound", "clusters"] as const) {
      const was = old[section];
      const now = pieces[section];
      const changed = now.filter(([k, p]) => was.get(k) !== p.hash);
      const keep = new Set(now.map(([k]) => k));
      parts.push(`${JSON.stringify(section)}:${encodeObject(changed)}`);
      removed.push(
        `${JSON.stringify(section)}:${JSON.stringify([...was.keys()].filter((k) => !keep.has(k)))}`,
      );
      versions.push(
        `${JSON.stringify(section)}:{${changed.map(([k, p]) => `${JSON.stringify(k)}:${JSON.stringify(p.hash)}`).join(",")}}`,
      );
    }
    body = `${parts.join(",")},"removed":{${removed.join(",")}},"resources":{${versions.join(",")}}`;
    // The whole snapshot carries the same head: compare what differs, the entries and their versions.
    if (body.length >= pieces.encoding().length + prepared.resources.length) body = null;
    byNew.set(pieces, body);
    return body;
  }

  #pieces(snapshot: ProxySnapshot): SnapshotPieces {
    const registered = piecesOf(snapshot);
    if (registered !== undefined) return registered;
    let made = this.#made.get(snapshot);
    if (made === undefined) {
      const outbound = Object.entries(snapshot.outbound).map(([k, v]) => [k, piece(v)] as const);
      const clusters = Object.entries(snapshot.clusters).map(([k, v]) => [k, piece(v)] as const);
      const encoding = `"outbound":${encodeObject(outbound)},"clusters":${encodeObject(clusters)}`;
      this.#made.set(snapshot, (made = { outbound, clusters, encoding: () => encoding }));
    }
    return made;
  }

  #prepare(pieces: SnapshotPieces): Prepared {
    let p = this.#prepared.get(pieces);
    if (p === undefined) {
      const hashes = {
        outbound: new Map(pieces.outbound.map(([k, x]) => [k, x.hash])),
        clusters: new Map(pieces.clusters.map(([k, x]) => [k, x.hash])),
      };
      const resources = JSON.stringify({
        outbound: Object.fromEntries(hashes.outbound),
        clusters: Object.fromEntries(hashes.clusters),
      });
      this.#prepared.set(pieces, (p = { hashes, resources }));
    }
    return p;
  }
}

/**
 * encodeMessage's line for a SnapshotMessage, in parts around the snapshot's cached encoding (shared
 * Buffers as they are); `resources`: the entries' versions, already encoded (left out when undefined).
 */
export function snapshotMessageParts(
  nonce: number,
  snapshot: ProxySnapshot,
  resources?: string,
): EncodedParts {
  const head: Omit<SnapshotMessage, "snapshot"> = { type: "snapshot", nonce, version: snapshot.version };
  const tail = resources === undefined ? "}\n" : `,"resources":${resources}}\n`;
  const out: (string | Buffer)[] = [`${JSON.stringify(head).slice(0, -1)},"snapshot":`];
  // Adjacent strings joined: one write per shared Buffer and per stretch of the proxy's own text.
  for (const p of [...snapshotParts(snapshot), tail]) {
    const last = out.length - 1;
    if (typeof p === "string" && typeof out[last] === "string") out[last] += p;
    else out.push(p);
  }
  return out;
}

/** encodeMessage's line for a SnapshotMessage, byte for byte (snapshotMessageParts joined). */
export function encodeSnapshotMessage(nonce: number, snapshot: ProxySnapshot, resources?: string): string {
  return snapshotMessageParts(nonce, snapshot, resources)
    .map((p) => (typeof p === "string" ? p : p.toString("utf8")))
    .join("");
}
