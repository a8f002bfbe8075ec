// LoopLag on a clock that can jump without firing timers (what a blocked event loop looks like):
// on-time ticks add nothing, a late tick adds its lateness, and a stall still in progress is seen
// before the sampler's own tick runs.

import assert from "node:assert/strict";
import { test } from "node:test";
import { LoopLag } from "./loop-lag.ts";

test("stalls are summed, including one still in progress; small jitter is not a stall", () => {
  let now = 0;
  let timer: (() => void) | undefined;
  const clock = {
    now: () => now,
    setTimeout: (fn: () => void) => (timer = fn),
    clearTimeout: () => (timer = undefined),
  };
  const lag = new LoopLag({ clock, intervalMs: 100, toleranceMs: 20 }).start();
  now = 100;
  timer!();
  now = 210; // 10 ms late: jitter
  timer!();
  assert.equal(lag.stalledMs(), 0);
  now = 1310; // blocked: the tick due at 310 has not run yet
  assert.equal(lag.stalledMs(), 1000, "the stall in progress is already counted");
  timer!();
  assert.equal(lag.stalledMs(), 1000, "and counted once when the tick finally runs");
  now = 1410;
  timer!();
  assert.equal(lag.stalledMs(), 1000);
  lag.stop();
  assert.equal(timer, undefined);
});
