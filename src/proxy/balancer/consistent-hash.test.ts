import { test } from "node:test";
import assert from "node:assert/strict";
import { HashRing, MaglevTable, nextPrime, type HashTable } from "./consistent-hash.ts";
import { hash32 } from "./hash.ts";

const endpointKeys = (n: number) => Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}:8080`);
const requestKeys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);

function owners(keys: readonly string[], table: HashTable): string[] {
  return requestKeys.map((k) => keys[table.ownerAt(table.slotOf(hash32(k)))]);
}

function chiSquare(assigned: readonly string[], keys: readonly string[]): number {
  const counts = new Map(keys.map((k) => [k, 0]));
  for (const a of assigned) counts.set(a, counts.get(a)! + 1);
  const expected = assigned.length / keys.length;
  let chi2 = 0;
  for (const c of counts.values()) chi2 += (c - expected) ** 2 / expected;
  return chi2;
}

const builders: [string, (keys: string[]) => HashTable][] = [
  ["RingHash", (keys) => new HashRing(keys)],
  ["Maglev", (keys) => new MaglevTable(keys)],
];

for (const [name, build] of builders) {
  test(`${name}: a key maps to the same endpoint every time and whatever the endpoints' order`, () => {
    const keys = endpointKeys(7);
    const a = owners(keys, build(keys));
    assert.deepEqual(owners(keys, build(keys)), a);
    const shuffled = [keys[3], keys[6], keys[0], keys[5], keys[1], keys[4], keys[2]];
    assert.deepEqual(owners(shuffled, build(shuffled)), a);
    assert.equal(new Set(a).size, 7);
  });

  test(`${name}: removing one of N endpoints moves about 1/N of the keys, and only its own`, () => {
    for (const n of [3, 10, 50]) {
      const keys = endpointKeys(n);
      const before = owners(keys, build(keys));
      const removed = keys[Math.floor(n / 2)];
      const rest = keys.filter((k) => k !== removed);
      const after = owners(rest, build(rest));
      let moved = 0;
      let movedOther = 0;
      for (let i = 0; i < before.length; i++) {
        if (before[i] === after[i]) continue;
        moved++;
        if (before[i] !== removed) movedOther++;
      }
      assert.ok(moved / before.length <= 1.5 / n, `${n} endpoints: ${moved} of ${before.length} moved`);
      assert.ok(
        movedOther / before.length <= 0.01,
        `${n} endpoints: ${movedOther} keys of staying endpoints moved`,
      );
      // Every key of the removed endpoint had to move.
      assert.ok(moved >= before.filter((o) => o === removed).length);
    }
  });
}

test("RingHash: keys spread within a few percent; a ring only ever moves the leaving endpoint's keys", () => {
  const keys = endpointKeys(10);
  const assigned = owners(keys, new HashRing(keys));
  // Shares vary with the points' placement (±1/sqrt(512) per endpoint) on top of sampling noise:
  // with 10 endpoints and 20000 keys, pure sampling noise alone would give about 9.
  assert.ok(chiSquare(assigned, keys) < 40, `chi-square ${chiSquare(assigned, keys)}`);
  const rest = keys.slice(1);
  const after = owners(rest, new HashRing(rest));
  for (let i = 0; i < assigned.length; i++) if (assigned[i] !== keys[0]) assert.equal(after[i], assigned[i]);
});

test("RingHash: a bigger table spreads more evenly", () => {
  const keys = endpointKeys(10);
  const small = chiSquare(owners(keys, new HashRing(keys, 64)), keys);
  const big = chiSquare(owners(keys, new HashRing(keys, 8192)), keys);
  assert.ok(big < small, `${big} < ${small}`);
  assert.equal(new HashRing(keys, 64).slots, 320);
  assert.equal(new HashRing(keys).slots, 5120);
});

test("Maglev: slots split evenly (±1) and keys spread as evenly as sampling allows", () => {
  const keys = endpointKeys(10);
  const table = new MaglevTable(keys);
  assert.equal(table.slots, 65537);
  const perEndpoint = new Array(10).fill(0);
  for (let s = 0; s < table.slots; s++) perEndpoint[table.ownerAt(s)]++;
  assert.ok(Math.max(...perEndpoint) - Math.min(...perEndpoint) <= 1, perEndpoint.join(","));
  // 9 degrees of freedom: the 0.999 quantile is 27.9.
  const chi2 = chiSquare(owners(keys, table), keys);
  assert.ok(chi2 < 27.9, `chi-square ${chi2}`);
});

test("Maglev: table sizes are rounded up to a prime and never below the endpoint count", () => {
  assert.equal(new MaglevTable(endpointKeys(3), 100).slots, 101);
  assert.equal(new MaglevTable(endpointKeys(3), 65537).slots, 65537);
  const tiny = new MaglevTable(endpointKeys(5), 2);
  assert.equal(tiny.slots, 5);
  assert.deepEqual(new Set(Array.from({ length: 5 }, (_, s) => tiny.ownerAt(s))).size, 5);
  assert.deepEqual([2, 3, 4, 8, 9, 14, 65536, 65537].map(nextPrime), [2, 3, 5, 11, 11, 17, 65537, 65537]);
});

test("both structures survive an empty or single-endpoint list", () => {
  assert.equal(new HashRing([]).slots, 0);
  const one = new MaglevTable(["a:1"], 7);
  for (let s = 0; s < one.slots; s++) assert.equal(one.ownerAt(s), 0);
  const ring = new HashRing(["a:1"]);
  assert.equal(ring.ownerAt(ring.slotOf(0xffffffff)), 0);
});
