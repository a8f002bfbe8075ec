// The come-back schedule on a manual clock: turns one per 1/rate after the drain, clamped to
// [1 s, max] while still counting past the clamp, and turns nobody took passing with time.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../store/embedded/testdata/manual-clock.ts";
import { ComeBackSchedule } from "./come-back.ts";

test("a crowd refused at once is spread at the rate, after the work ahead", () => {
  const clock = new ManualClock();
  const schedule = new ComeBackSchedule(clock, 30_000);
  // 5 s of work queued, 100 served per second: caller k comes back at 5 s + k × 10 ms.
  const told = Array.from({ length: 300 }, () => schedule.book(5_000, 100));
  assert.equal(told[0], 5_000);
  assert.equal(told[1], 5_010);
  assert.equal(told[299], 7_990);
  assert.equal(schedule.booked(100), 800);
});

test("answers are clamped to [1 s, max] but the schedule keeps counting past the clamp", () => {
  const clock = new ManualClock();
  const schedule = new ComeBackSchedule(clock, 2_000);
  assert.equal(schedule.book(0, 1), 1_000, "an empty queue still says 1 s");
  assert.equal(schedule.book(0, 1), 1_000);
  assert.equal(schedule.book(0, 1), 2_000);
  assert.equal(schedule.book(0, 1), 2_000, "3 s ahead, told the 2 s maximum");
  clock.advance(2_500);
  assert.equal(schedule.book(0, 1), 1_500, "the turn after the clamped ones, not the floor");
});

test("turns nobody took pass with time", () => {
  const clock = new ManualClock();
  const schedule = new ComeBackSchedule(clock, 30_000);
  for (let i = 0; i < 50; i++) schedule.book(0, 10);
  clock.advance(10_000);
  assert.equal(schedule.booked(10), 0);
  assert.equal(schedule.book(3_000, 10), 3_000);
});
