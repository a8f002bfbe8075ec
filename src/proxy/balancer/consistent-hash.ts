// The two consistent-hash lookup structures behind RingHash and Maglev. Both are built once per
// config change from the endpoints' keys and answer "which endpoint owns this 32-bit hash" with no
// allocation. Both expose positions ("slots") so that the caller can walk on from the owner when it
// is ejected or excluded: the next slots belong to other endpoints in an order that is itself a
// function of the hash, so the keys of an unavailable endpoint spread over the others while every
// other key stays where it was.
//
// Both are built in the order of the keys, not of the list they come in: two proxies that receive
// the same endpoints in a different order must send a given key to the same endpoint.

import { hash32 } from "./hash.ts";

export interface HashTable {
  /** Number of positions. */
  readonly slots: number;
  /** The position a request hash lands on. */
  slotOf(hash: number): number;
  /** Index (in the key list the table was built from) of the endpoint owning a position. */
  ownerAt(slot: number): number;
}

/** Envoy's default minimum ring size. */
export const DEFAULT_RING_SIZE = 1024;
/** Envoy's maximum ring size: beyond it the build takes longer than a config change should. */
export const MAX_RING_SIZE = 8 * 1024 * 1024;
/** Maglev's usual table size: prime, and ≥ 100 × the endpoints of any sensible cluster. */
export const DEFAULT_MAGLEV_SIZE = 65537;
/** Tables beyond this (prime ≥ 2^22, 16 MB) are capped: the lookup gains nothing from them. */
const MAX_MAGLEV_SIZE = 4194319;

/** Indices of `keys` in key order (ties in list order), so builds do not depend on list order. */
function keyOrder(keys: readonly string[]): number[] {
  const order = keys.map((_, i) => i);
  order.sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : a - b));
  return order;
}

/**
 * Ketama-style ring: every endpoint owns points on a 32-bit circle, the hashes of its key under
 * seeds 0, 1, 2, …; a request hash belongs to the first point at or after it, wrapping around.
 *
 * Every endpoint gets ceil(minSize / 2) points, whatever the number of endpoints: the ring has at
 * least `minSize` entries as soon as there are two, and an endpoint's points do not depend on who
 * else is in the set. Spreading a fixed total over the endpoints (Envoy's sizing) would add or drop
 * points on every endpoint whenever one joins or leaves, moving about another 1/N of the keys
 * between endpoints that stayed; with a fixed count, only the keys of the endpoint that left move.
 * Shares vary by about 1/sqrt(points per endpoint): ±4 % at the default. Above MAX_RING_SIZE
 * entries in total (16384 endpoints at the default) the count per endpoint shrinks to fit.
 */
export class HashRing implements HashTable {
  readonly #points: Uint32Array;
  readonly #owners: Uint32Array;

  constructor(keys: readonly string[], minSize = DEFAULT_RING_SIZE) {
    const n = keys.length;
    const order = keyOrder(keys);
    const perEndpoint =
      n === 0 ? 0 : Math.max(1, Math.min(Math.ceil(minSize / 2), Math.floor(MAX_RING_SIZE / n)));
    const total = n * perEndpoint;
    // Sort (point, rank) pairs packed into one double: point × 2^21 + rank stays below 2^53, and a
    // typed-array sort is numeric and fast. The rank breaks (rare) equal points by key order.
    const packed = new Float64Array(total);
    let p = 0;
    for (let rank = 0; rank < n; rank++) {
      const key = keys[order[rank]];
      for (let r = 0; r < perEndpoint; r++) packed[p++] = hash32(key, r) * 2097152 + rank;
    }
    packed.sort();
    this.#points = new Uint32Array(total);
    this.#owners = new Uint32Array(total);
    for (let i = 0; i < total; i++) {
      const v = packed[i];
      const rank = v % 2097152;
      this.#points[i] = (v - rank) / 2097152;
      this.#owners[i] = order[rank];
    }
  }

  get slots(): number {
    return this.#points.length;
  }

  slotOf(hash: number): number {
    // First point >= hash (binary search), wrapping past the last point to the first.
    const points = this.#points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid] < hash) lo = mid + 1;
      else hi = mid;
    }
    return lo === points.length ? 0 : lo;
  }

  ownerAt(slot: number): number {
    return this.#owners[slot];
  }
}

/**
 * Maglev lookup table (Eisenbud et al., NSDI 2016): every endpoint has a permutation of the M
 * slots, `(offset + j × skip) mod M` with offset and skip from two hashes of its key (M prime, so
 * every skip visits every slot); endpoints take turns claiming their next free preferred slot until
 * the table is full. Each endpoint ends up with M/n slots give or take one, and when one leaves,
 * the others' preferences are unchanged, so nearly only its slots change hands.
 */
export class MaglevTable implements HashTable {
  readonly #table: Uint16Array | Uint32Array;

  constructor(keys: readonly string[], size = DEFAULT_MAGLEV_SIZE) {
    const n = keys.length;
    const m = nextPrime(Math.min(Math.max(size, n, 2), MAX_MAGLEV_SIZE));
    const table = n <= 65536 ? new Uint16Array(m) : new Uint32Array(m);
    this.#table = table;
    if (n === 0) return;
    const order = keyOrder(keys);
    const pos = new Float64Array(n);
    const skip = new Float64Array(n);
    for (let rank = 0; rank < n; rank++) {
      const key = keys[order[rank]];
      pos[rank] = hash32(key, 0x6d61676c) % m;
      skip[rank] = (hash32(key, 0x65763031) % (m - 1)) + 1;
    }
    const taken = new Uint8Array(m);
    let filled = 0;
    while (true) {
      for (let rank = 0; rank < n; rank++) {
        let c = pos[rank];
        const s = skip[rank];
        while (taken[c] === 1) {
          c += s;
          if (c >= m) c -= m;
        }
        taken[c] = 1;
        table[c] = order[rank];
        c += s;
        pos[rank] = c >= m ? c - m : c;
        if (++filled === m) return;
      }
    }
  }

  get slots(): number {
    return this.#table.length;
  }

  slotOf(hash: number): number {
    return hash % this.#table.length;
  }

  ownerAt(slot: number): number {
    return this.#table[slot];
  }
}

/** Smallest prime ≥ x (x ≥ 2). Trial division: tables are a few million slots at most. */
export function nextPrime(x: number): number {
  let c = Math.max(2, Math.ceil(x));
  for (; ; c++) {
    if (c < 4) return c;
    if (c % 2 === 0) continue;
    let prime = true;
    for (let d = 3; d * d <= c; d += 2) {
      if (c % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) return c;
  }
}
