// String hashing for consistent-hash balancing (consistent-hash.ts): endpoint keys when the ring or
// table is built, request hash keys (hash-key.ts) at pick time.
//
// MurmurHash3 (x86, 32-bit) applied to the string's UTF-16 code units, two per 32-bit block. That
// is bit-for-bit MurmurHash3 of the string's UTF-16LE bytes (a block's little-endian read of
// lo0 hi0 lo1 hi1 is c0 | c1 << 16), so it can be checked against any reference implementation,
// yet needs no encoding step: hashing a request's key at pick time allocates nothing and costs
// one multiply-rotate round per two characters. Murmur3's finaliser avalanches well, which matters
// here because endpoint keys ("10.0.0.7:9080", "10.0.0.8:9080") differ in a character or two.
//
// Not for anything adversarial: a client that controls the hashed header can aim its requests at
// one endpoint whatever the hash, so a keyed hash would buy nothing.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** MurmurHash3_x86_32 of `s` as UTF-16LE, with `seed`. Unsigned 32-bit result. */
export function hash32(s: string, seed = 0): number {
  const n = s.length;
  let h = seed | 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let k = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16) | 0;
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    // An odd code unit left: a two-byte tail.
    let k = s.charCodeAt(i);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= n * 2; // length in bytes
  return fmix32(h);
}

/** Murmur3's finaliser: every input bit affects every output bit. Unsigned 32-bit result. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
