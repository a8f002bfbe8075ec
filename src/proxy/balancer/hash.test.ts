import { test } from "node:test";
import assert from "node:assert/strict";
import { hash32 } from "./hash.ts";
import { cookieValue, hashKeyOf } from "./hash-key.ts";

/** Textbook MurmurHash3_x86_32 over bytes, written independently of hash.ts. */
function murmur3Bytes(bytes: Uint8Array, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const blocks = bytes.length >> 2;
  const mixK = (k: number): number => {
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    return Math.imul(k, c2);
  };
  for (let b = 0; b < blocks; b++) {
    const i = b * 4;
    const k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h ^= mixK(k);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[tail + 2] << 16;
    if (rest >= 2) k ^= bytes[tail + 1] << 8;
    k ^= bytes[tail];
    h ^= mixK(k);
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

test("the reference implementation reproduces MurmurHash3_x86_32's published vectors", () => {
  const ascii = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
  assert.equal(murmur3Bytes(ascii(""), 0), 0);
  assert.equal(murmur3Bytes(ascii(""), 1), 0x514e28b7);
  assert.equal(murmur3Bytes(ascii(""), 0xffffffff), 0x81f16f39);
  assert.equal(murmur3Bytes(new Uint8Array(4), 0), 0x2362f9de);
  assert.equal(murmur3Bytes(ascii("aaaa"), 0x9747b28c), 0x5a97808a);
  assert.equal(murmur3Bytes(ascii("Hello, world!"), 0x9747b28c), 0x24884cba);
  assert.equal(murmur3Bytes(ascii("The quick brown fox jumps over the lazy dog"), 0x9747b28c), 0x2fa826cd);
});

test("hash32 is MurmurHash3 of the string's UTF-16LE bytes, odd and even lengths, any seed", () => {
  const samples = ["", "a", "ab", "abc", "10.0.0.7:9080", "user-42", "ünïcødé ☃", "😀x", "x".repeat(101)];
  for (const s of samples) {
    for (const seed of [0, 1, 0x9747b28c, 0xffffffff]) {
      assert.equal(
        hash32(s, seed),
        murmur3Bytes(new Uint8Array(Buffer.from(s, "utf16le")), seed),
        `${s}/${seed}`,
      );
    }
  }
});

test("hash32 spreads near-identical keys evenly over buckets and avalanches", () => {
  const buckets = new Array(64).fill(0);
  const n = 64_000;
  for (let i = 0; i < n; i++) buckets[hash32(`10.0.${i >> 8}.${i & 255}:8080`) % 64]++;
  const expected = n / 64;
  const chi2 = buckets.reduce((sum, o) => sum + (o - expected) ** 2 / expected, 0);
  // 63 degrees of freedom: the 0.999 quantile is about 104.
  assert.ok(chi2 < 104, `chi-square ${chi2.toFixed(1)}`);

  // Changing one character flips about half of the 32 output bits.
  let flipped = 0;
  for (let i = 0; i < 1000; i++) {
    const x = hash32(`key-${i}a`) ^ hash32(`key-${i}b`);
    for (let b = 0; b < 32; b++) flipped += (x >>> b) & 1;
  }
  const mean = flipped / 1000;
  assert.ok(mean > 15 && mean < 17, `mean bits flipped ${mean}`);
});

const request = (headers: Record<string, string>) => ({ header: (name: string) => headers[name] });

test("hashKeyOf takes the named header (any case in the policy), the cookie, or the source address", () => {
  const req = request({ "x-user": "alice", cookie: "theme=dark; session=abc123; lang=en" });
  assert.equal(hashKeyOf({ header: "X-User" }, req, "10.0.0.1"), "alice");
  assert.equal(hashKeyOf({ header: "x-missing" }, req, "10.0.0.1"), undefined);
  assert.equal(hashKeyOf({ cookie: "session" }, req, "10.0.0.1"), "abc123");
  assert.equal(hashKeyOf({ cookie: "missing" }, req, "10.0.0.1"), undefined);
  assert.equal(hashKeyOf({ cookie: "session" }, request({}), "10.0.0.1"), undefined);
  assert.equal(hashKeyOf({ sourceAddress: true }, req, "10.0.0.1"), "10.0.0.1");
  assert.equal(hashKeyOf({ sourceAddress: true }, req, undefined), undefined);
  assert.equal(hashKeyOf({}, req, "10.0.0.1"), undefined);
});

test("cookieValue matches whole names only, unquotes, and handles joined Cookie headers", () => {
  assert.equal(cookieValue("session=1", "session"), "1");
  assert.equal(cookieValue("xsession=1; session=2", "session"), "2");
  assert.equal(cookieValue("session_id=1", "session"), undefined);
  assert.equal(cookieValue("Session=1", "session"), undefined);
  assert.equal(cookieValue('a=1;session="q v";b=2', "session"), "q v");
  assert.equal(cookieValue("a=1, session=2", "session"), "2");
  assert.equal(cookieValue("session=; a=1", "session"), "");
  assert.equal(cookieValue("session=a=b", "session"), "a=b");
  assert.equal(cookieValue("flag; session=3", "session"), "3");
  assert.equal(cookieValue("session=first; session=second", "session"), "first");
  assert.equal(cookieValue(" ;; ", "session"), undefined);
});
