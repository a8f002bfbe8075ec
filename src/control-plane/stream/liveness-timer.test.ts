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

test("with a lag monitor, the control plane's stalls are not counted against the proxy, and extend its lease", () => {
  const clock = new ManualClock();
  let stalled = 0;
  const pending: ((err: Error | null) => void)[] = [];
  const events: string[] = [];
  new Liveness({
    ping: (done) => (pending.push(done), true),
    clock,
    periodMs: 100,
    timeoutMs: 300,
    onAlive: () => events.push(`alive@${clock.now() - 1_000_000}`),
    onDead: (why) => events.push(`dead@${clock.now() - 1_000_000}: ${why}`),
    lag: { stalledMs: () => stalled },
  });
  clock.advance(100); // ping sent at 100, never answered
  stalled += 250; // the control plane's loop was stuck for 250 of the next 100..200
  clock.advance(100);
  assert.deepEqual(events, ["alive@200"], "the lease is extended by the stall");
  clock.advance(400); // 600: waited 500, of which 250 stalled
  assert.deepEqual(events, ["alive@200"], "250 ms of the proxy's time is under the 300 ms timeout");
  clock.advance(100);
  assert.deepEqual(events, ["alive@200", "dead@700: no answer to a ping for 350 ms"]);
});

test("any message heard from the proxy counts as an answer: the wait starts over and the lease is kept", () => {
  const { clock, pending, events, l } = setup();
  clock.advance(100); // ping sent at 100; its answer is slow
  clock.advance(250);
  l.heard(); // an ACK arrives at 350
  assert.deepEqual(events, ["alive@350"]);
  l.heard(); // a burst of messages refreshes the lease once per quarter period, not per message
  assert.deepEqual(events, ["alive@350"]);
  clock.advance(250); // 600: 250 since the proxy was last heard
  assert.equal(events.length, 1, "not dead at 400, as it would be without the message");
  assert.equal(pending.length, 1, "still one ping outstanding");
  clock.advance(100);
  assert.deepEqual(events, ["alive@350", "dead@700: no answer to a ping for 350 ms"]);
});
