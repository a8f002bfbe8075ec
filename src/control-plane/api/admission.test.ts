// Admission on a manual clock: the concurrency limit, round-robin fairness across keys, the queue
// bounds (total and per key) refusing at once with a drain-time Retry-After, the wait limit, callers
// that go away, and the token bucket pacing starts.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../store/embedded/testdata/manual-clock.ts";
import { Admission, Overloaded } from "./admission.ts";
import { TokenBucket } from "./token-bucket.ts";

/** Work that runs until the test says so; records the order in which work started. */
function harness(opts: Partial<ConstructorParameters<typeof Admission>[0]> = {}) {
  const clock = new ManualClock();
  const admission = new Admission({
    name: "signing",
    concurrency: 2,
    maxQueued: 100,
    maxQueuedPerKey: 100,
    maxWaitMs: 30_000,
    clock,
    ...opts,
  });
  const started: string[] = [];
  const finishers: (() => void)[] = [];
  const submit = (key: string, label = key, signal?: AbortSignal) =>
    admission.run(
      key,
      () =>
        new Promise<string>((resolve) => {
          started.push(label);
          finishers.push(() => resolve(label));
        }),
      signal,
    );
  const settle = () => new Promise((r) => setImmediate(r));
  /** Finishes the oldest running work and lets the queue move. */
  const finishOne = async () => {
    finishers.shift()!();
    await settle();
  };
  return { clock, admission, started, submit, settle, finishOne };
}

test("no more than `concurrency` run at once; the rest start as slots free up", async () => {
  const h = harness();
  const results = ["a1", "a2", "a3", "a4"].map((l) => h.submit("a", l));
  await h.settle();
  assert.deepEqual(h.started, ["a1", "a2"]);
  assert.equal(h.admission.stats.queued, 2);
  await h.finishOne();
  assert.deepEqual(h.started, ["a1", "a2", "a3"]);
  await h.finishOne();
  await h.finishOne();
  await h.finishOne();
  assert.deepEqual(await Promise.all(results), ["a1", "a2", "a3", "a4"]);
  assert.deepEqual(h.admission.stats, {
    running: 0,
    queued: 0,
    admitted: 4,
    refused: { queue_full: 0, key_queue_full: 0, queue_timeout: 0 },
  });
});

test("fair: a noisy key gets one turn per round, so a quiet key is not starved behind it", async () => {
  const h = harness({ concurrency: 1 });
  const all = [];
  for (let i = 1; i <= 6; i++) all.push(h.submit("noisy", `n${i}`));
  all.push(h.submit("quiet-1", "q1"), h.submit("quiet-2", "r1"), h.submit("quiet-1", "q2"));
  await h.settle();
  while (h.started.length < 9) await h.finishOne();
  // n1 was running when the others came; then the ring: noisy, quiet-1, quiet-2, noisy, quiet-1, ...
  assert.deepEqual(h.started, ["n1", "n2", "q1", "r1", "n3", "q2", "n4", "n5", "n6"]);
  while (h.admission.stats.running > 0) await h.finishOne();
  await Promise.all(all);
});

test("bounded: past the queue's length, or a key's share of it, requests are refused at once", async () => {
  const h = harness({ concurrency: 1, maxQueued: 3, maxQueuedPerKey: 2 });
  void h.submit("a", "a1"); // runs
  const queued = [h.submit("a", "a2"), h.submit("a", "a3")];
  await assert.rejects(h.submit("a", "a4"), (err: Overloaded) => {
    assert.ok(err instanceof Overloaded);
    assert.equal(err.reason, "key_queue_full");
    assert.match(err.message, /2 requests of a already waiting/);
    return true;
  });
  const b = h.submit("b", "b1"); // another key still has room in the total
  await assert.rejects(h.submit("c", "c1"), { reason: "queue_full" });
  assert.deepEqual(h.admission.stats.refused, { queue_full: 1, key_queue_full: 1, queue_timeout: 0 });
  while (h.started.length < 4) await h.finishOne();
  await h.finishOne();
  await Promise.all([...queued, b]);
});

test("Retry-After grows with the queue: the time the work ahead takes to drain at the rate", async () => {
  const clock = new ManualClock();
  const admission = new Admission({
    name: "signing",
    concurrency: 100,
    maxQueued: 50,
    maxQueuedPerKey: 50,
    maxWaitMs: 60_000,
    clock,
    bucket: new TokenBucket(10, 1, clock), // 10 per second
  });
  const queued = Array.from({ length: 51 }, (_, i) => admission.run(`k${i}`, async () => i));
  await new Promise((r) => setImmediate(r));
  assert.equal(admission.stats.queued, 50);
  const err = await admission.run("late", async () => 0).catch((e: Overloaded) => e);
  assert.ok(err instanceof Overloaded);
  assert.equal(err.reason, "queue_full");
  // 50 waiting at 10 per second: 5 s, however fast each signature is.
  assert.ok(err.retryAfterMs >= 4_900 && err.retryAfterMs <= 5_100, `retry after ${err.retryAfterMs} ms`);
  for (let i = 0; i < 60; i++) {
    clock.advance(100);
    await new Promise((r) => setImmediate(r));
  }
  assert.equal((await Promise.all(queued)).length, 51);
});

test("a waiter not admitted within maxWaitMs is refused; one whose caller left just leaves", async () => {
  const h = harness({ concurrency: 1, maxWaitMs: 5_000 });
  void h.submit("a", "a1");
  const waiting = h.submit("b", "b1");
  const gone = new AbortController();
  const leaving = h.submit("c", "c1", gone.signal);
  await h.settle();
  gone.abort(new Error("client went away"));
  await assert.rejects(leaving, /client went away/);
  assert.equal(h.admission.stats.queued, 1);
  h.clock.advance(5_000);
  await assert.rejects(waiting, (err: Overloaded) => err.reason === "queue_timeout");
  assert.equal(h.admission.stats.queued, 0);
  await h.finishOne();
  assert.deepEqual(h.started, ["a1"], "neither the refused nor the departed waiter ever ran");
});

test("the token bucket paces starts: a burst goes at once, then one per 1/rate", async () => {
  const clock = new ManualClock();
  const bucket = new TokenBucket(2, 3, clock); // 2 per second, bursts of 3
  const admission = new Admission({
    name: "signing",
    concurrency: 100,
    maxQueued: 100,
    maxQueuedPerKey: 100,
    maxWaitMs: 60_000,
    clock,
    bucket,
  });
  const startedAt: number[] = [];
  const all = Array.from({ length: 7 }, (_, i) =>
    admission.run(`k${i}`, async () => void startedAt.push(clock.now() - 1_000_000)),
  );
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(startedAt, [0, 0, 0]);
  for (let i = 0; i < 8; i++) {
    clock.advance(250);
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(all);
  assert.deepEqual(startedAt, [0, 0, 0, 500, 1000, 1500, 2000]);
});

test("refused callers are each told a turn of their own, one per 1/rate after the queue; unused turns pass", async () => {
  const clock = new ManualClock();
  const admission = new Admission({
    name: "signing",
    concurrency: 1,
    maxQueued: 1,
    maxQueuedPerKey: 1,
    maxWaitMs: 60_000,
    clock,
    bucket: new TokenBucket(10, 1, clock),
  });
  const held = admission.run("a", () => new Promise<void>(() => {})); // runs forever
  void held;
  const queued = admission.run("b", async () => {}).catch(() => {});
  const refusal = () => admission.run("c", async () => 0).catch((e: Overloaded) => e.retryAfterMs);
  const told: number[] = [];
  for (let i = 0; i < 40; i++) told.push(await refusal());
  // Two ahead at 10 per second drain in 200 ms (the 1 s floor); then each refused caller gets the
  // next turn, 100 ms apart: the 40th comes back 0.2 + 3.9 s from now.
  assert.equal(told[0], 1000);
  assert.equal(told[39], 4100);
  for (let i = 1; i < told.length; i++) assert.ok(told[i] >= told[i - 1], `turns in order: ${told}`);
  assert.equal(new Set(told.filter((t) => t > 1000)).size, told.filter((t) => t > 1000).length);
  clock.advance(60_000); // a minute later every turn has passed (and the queued one timed out)
  await queued;
  const queuedAgain = admission.run("d", async () => {}).catch(() => {});
  assert.equal(await refusal(), 1000, "nobody booked any more: back to the floor");
  clock.advance(60_000);
  await queuedAgain;
});

test("the pace counts the work actually finished: one slow turn does not park a crowd that is served fast", async () => {
  const clock = new ManualClock();
  const admission = new Admission({
    name: "registration",
    concurrency: 2,
    maxQueued: 20,
    maxQueuedPerKey: 20,
    maxWaitMs: 60_000,
    clock,
  });
  const tick = () => new Promise((r) => setImmediate(r));
  // One slot runs quick units of 10 ms, 100 per second, for 5 s; the other one unit that takes all
  // 5 s (a turn that ran into its hold limit) and finishes last, inflating the mean service time.
  const slow = admission.run("slow", () => new Promise<void>((r) => clock.setTimeout(r, 5_000)));
  await tick();
  for (let i = 0; i < 499; i++) {
    const quick = admission.run(`q${i}`, () => new Promise<void>((r) => clock.setTimeout(r, 10)));
    await tick();
    clock.advance(10);
    await quick;
  }
  clock.advance(10);
  await slow;
  // 20 queued behind two held slots, then one more refused: at ~100 finished per second the queue
  // drains in ~0.2 s (the 1 s floor); by slots ÷ mean service time it would be several seconds.
  const hold = () => admission.run("h", () => new Promise<void>(() => {})).catch(() => {});
  void hold();
  void hold();
  const queued = Array.from({ length: 20 }, (_, i) => admission.run(`w${i}`, async () => {}).catch(() => {}));
  await tick();
  const err = await admission.run("late", async () => 0).catch((e: Overloaded) => e);
  assert.ok(err instanceof Overloaded);
  assert.equal(err.retryAfterMs, 1000);
  clock.advance(60_000);
  await Promise.all(queued);
});
