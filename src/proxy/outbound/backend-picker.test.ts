import { test } from "node:test";
import assert from "node:assert/strict";
import { WeightedPicker } from "./backend-picker.ts";

test("weight 0 is never picked; the other backend always is", () => {
  const p = new WeightedPicker([
    { item: "v1", weight: 0 },
    { item: "v2", weight: 100 },
  ]);
  for (let i = 0; i < 1000; i++) assert.equal(p.pick(), "v2");
  assert.equal(p.pick(0), "v2");
  assert.equal(p.pick(0.999999), "v2");
});

test("picks by cumulative weight at the boundaries", () => {
  const p = new WeightedPicker([
    { item: "a", weight: 1 },
    { item: "b", weight: 3 },
  ]);
  assert.equal(p.pick(0), "a");
  assert.equal(p.pick(0.2499), "a");
  assert.equal(p.pick(0.25), "b");
  assert.equal(p.pick(0.9999), "b");
});

test("1:1 split is roughly even", () => {
  const p = new WeightedPicker([
    { item: "a", weight: 50 },
    { item: "b", weight: 50 },
  ]);
  let a = 0;
  for (let i = 0; i < 10_000; i++) if (p.pick() === "a") a++;
  assert.ok(a > 4500 && a < 5500, `a picked ${a} of 10000`);
});

test("no positive weight means nothing to pick", () => {
  assert.equal(new WeightedPicker([{ item: "a", weight: 0 }]).pick(), undefined);
  assert.equal(new WeightedPicker<string>([]).pick(), undefined);
  assert.equal(new WeightedPicker([{ item: "a", weight: -1 }]).total, 0);
});
