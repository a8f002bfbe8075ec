// Liveness on a manual clock: only answered pings count, one ping at a time, and a ping left
// unanswered for the timeout declares the peer dead (once).

import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../store/embedded/testdata/manual-clock.ts";
import { Liveness } from "./liveness.ts";

function setup() {
  const clock = new ManualClock();
  const pending: ((err: Error | null) => void)[] = [];
  const events: string[] = [];
  const l = new Liveness({
    ping: (done) => (pending.push(done), true),
    clock,
    periodMs: 100,
    timeoutMs: 300,
    onAlive: () => events.push(`alive@${clock.now() - 1_000_000}`),
    onDead: (why) => events.push(`dead@${clock.now() - 1_000_000}: ${why}`),
  });
  return { clock, pending, events, l };
}

test("each answered ping refreshes; a ping is sent every period while answers come", () => {
  const { clock, pending, events, l } = setup();
  for (let i = 1; i <= 3; i++) {
    clock.advance(100);
    assert.equal(pending.length, i, "one ping per period");
    pending[i - 1](null);
  }
  assert.deepEqual(events, ["alive@100", "alive@200", "alive@300"]);
  l.stop();
  clock.advance(1000);
  assert.equal(pending.length, 3, "no pings after stop");
});

test("an unanswered ping blocks the next, refreshes nothing, and is declared dead after the timeout", () => {
  const { clock, pending, events } = setup();
  clock.advance(100);
  pending[0](null);
  clock.advance(100); // second ping, never answered
  clock.advance(200);
  assert.equal(pending.length, 2, "no new ping while one is outstanding");
  assert.deepEqual(events, ["alive@100"]);
  clock.advance(100);
  assert.deepEqual(events, ["alive@100", "dead@500: no answer to a ping for 300 ms"]);
  clock.advance(1000);
  assert.equal(events.length, 2, "dead once, then silent");
  // A late answer after that changes nothing.
  pending[1](null);
  assert.equal(events.length, 2);
});

test("a failed ping (connection closing) refreshes nothing", () => {
  const { clock, pending, events } = setup();
  clock.advance(100);
  pending[0](new Error("ERR_HTTP2_PING_CANCEL"));
  clock.advance(100);
  assert.equal(pending.length, 2, "tries again next period");
  assert.deepEqual(events, []);
});

test("a control plane that stalled does not hold its own stall against the proxy", () => {
  // A clock whose time can jump without firing timers: what a blocked event loop looks like.
  let now = 0;
  let timer: (() => void) | undefined;
  const clock = {
    now: () => now,
    setTimeout: (fn: () => void) => (timer = fn),
    clearTimeout: () => (timer = undefined),
  };
  const pending: ((err: Error | null) => void)[] = [];
  const events: string[] = [];
  new Liveness({
    ping: (done) => (pending.push(done), true),
    clock,
    periodMs: 100,
    timeoutMs: 300,
    onAlive: () => events.push(`alive@${now}`),
    onDead: () => events.push(`dead@${now}`),
  });
  now = 100;
  timer?.(); // ping sent at 100; its answer is stuck behind the stall
  now = 1100; // the loop was blocked for a second
  timer?.();
  assert.deepEqual(events, ["alive@1100"], "the lease is extended, not the proxy declared dead");
  now = 1200;
  timer?.();
  assert.deepEqual(events, ["alive@1100"], "the wait for the answer starts over");
  pending[0](null);
  assert.deepEqual(events, ["alive@1100", "alive@1200"]);
});
