import { test } from "node:test";
import assert from "node:assert/strict";
import { RoundRobin } from "./round-robin.ts";
import { createBalancer } from "./balancer.ts";

test("round robin cycles through every item in order from its start", () => {
  const rr = new RoundRobin(["a", "b", "c"], 1);
  assert.deepEqual(
    Array.from({ length: 7 }, () => rr.pick()),
    ["b", "c", "a", "b", "c", "a", "b"],
  );
});

test("round robin over nothing picks undefined; over one item always that item", () => {
  assert.equal(new RoundRobin([]).pick(), undefined);
  const one = createBalancer(["x"]);
  assert.equal(one.size, 1);
  for (let i = 0; i < 5; i++) assert.equal(one.pick(), "x");
});

test("round robin spreads evenly from a random start", () => {
  const rr = createBalancer([1, 2, 3, 4]);
  const counts = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    const v = rr.pick()!;
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  assert.deepEqual([...counts.values()], [100, 100, 100, 100]);
});
