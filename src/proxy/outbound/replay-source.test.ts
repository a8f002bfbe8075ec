// The replay source on its own, over a PassThrough standing in for the client's body: readers that
// replay then follow the live body, the limit that drops the copy, back-pressure from the slowest
// active reader (and none from a shadow), and the live body failing or being cut off mid-way.

import assert from "node:assert/strict";
import { once } from "node:events";
import { PassThrough, type Readable } from "node:stream";
import { test } from "node:test";
import { isReplayOverflow, ReplaySource } from "./replay-source.ts";

/** Everything `r` yields until it ends (or the error it fails with). */
async function drain(r: Readable): Promise<string> {
  let s = "";
  for await (const chunk of r) s += String(chunk);
  return s;
}

/** Lets the streams' queued callbacks run. */
const tick = () => new Promise((r) => setImmediate(r));

test("a reader made later replays what was kept, then follows the live body with the first", async () => {
  const live = new PassThrough();
  const src = new ReplaySource(live, 1024);
  const first = src.reader()!;
  const firstText = drain(first);
  live.write("ab");
  live.write("cd");
  await tick();
  const second = src.reader()!;
  const secondText = drain(second);
  live.write("ef");
  live.end("gh");
  assert.equal(await firstText, "abcdefgh");
  assert.equal(await secondText, "abcdefgh");
  assert.ok(src.replayable, "a body that fits stays replayable after its end");
  assert.equal(src.whole?.toString(), "abcdefgh");
  assert.equal(await drain(src.reader()!), "abcdefgh", "a reader made after the end replays it all");
});

test("the first reader gets chunks as they arrive, before the body ends", async () => {
  const live = new PassThrough();
  const src = new ReplaySource(live, 1024);
  const r = src.reader()!;
  live.write("hello");
  const [chunk] = await once(r, "data");
  assert.equal(String(chunk), "hello");
  assert.equal(live.writableEnded, false);
});

test("past the limit the copy is dropped: no new reader, readers under way get the whole body", async () => {
  const live = new PassThrough();
  const src = new ReplaySource(live, 4);
  let overflows = 0;
  src.onOverflow = () => overflows++;
  const reading = src.reader()!;
  const readingText = drain(reading);
  const behind = src.reader()!; // not read yet: still replaying when the copy is dropped
  live.write("abc");
  await tick();
  assert.ok(src.replayable);
  live.write("de");
  await tick();
  assert.equal(src.replayable, false);
  assert.equal(src.reader(), undefined, "no reader once the copy is gone");
  assert.equal(overflows, 1);
  live.end("fg");
  assert.equal(await readingText, "abcdefg");
  assert.equal(await drain(behind), "abcdefg", "a reader that was behind lost nothing");
  assert.equal(src.whole, undefined);
});

test("a shadow reader is cut off when the body outgrows the limit", async () => {
  const live = new PassThrough();
  const src = new ReplaySource(live, 4);
  const real = src.reader()!;
  const realText = drain(real);
  const shadow = src.reader(true)!; // nobody reads it yet (its connection is still opening)
  live.end("abcdef");
  await tick();
  // It fails when its transport starts reading it, so the transport hears of it.
  const failed = once(shadow, "error");
  shadow.resume();
  const [err] = await failed;
  assert.ok(isReplayOverflow(err), String(err));
  assert.ok(isReplayOverflow(new Error("wrapped", { cause: err })), "found through a cause");
  assert.equal(await realText, "abcdef");
});

test("back-pressure: the live body pauses while the slowest active reader is full", async () => {
  const live = new PassThrough();
  const src = new ReplaySource(live, 1 << 20);
  const slow = src.reader()!;
  const fast = src.reader()!;
  const fastText = drain(fast);
  slow.pause();
  slow.read(0); // the slow reader follows the live body, and reads nothing from here on
  const chunk = "x".repeat(slow.readableHighWaterMark + 1); // fills a reader at once
  live.write(chunk);
  live.write(chunk);
  await tick();
  assert.ok(live.isPaused(), "the live body waits for the slow reader");
  // A shadow reader that is never read does not hold the body back.
  const shadow = src.reader(true)!;
  shadow.read(0);
  // The slow reader reads: the live body flows again.
  const slowText = drain(slow);
  await tick();
  assert.equal(live.isPaused(), false);
  live.end();
  assert.equal((await slowText).length, 2 * chunk.length);
  assert.equal((await fastText).length, 2 * chunk.length);
});

test("a full reader that is destroyed (its attempt ended) stops holding the live body back", async () => {
  const live = new PassThrough();
  const src = new ReplaySource(live, 1 << 20);
  const r = src.reader()!;
  r.pause();
  r.read(0);
  live.write("x".repeat(r.readableHighWaterMark + 1));
  await tick();
  assert.ok(live.isPaused());
  r.destroy();
  assert.equal(live.isPaused(), false);
});

test("the client aborting mid-body fails every reader; no reader can be made after", async () => {
  const live = new PassThrough();
  const src = new ReplaySource(live, 1024);
  const a = src.reader()!;
  const b = src.reader()!;
  a.resume();
  b.resume();
  live.write("part");
  await tick();
  const failures = Promise.all([once(a, "error"), once(b, "error")]);
  live.destroy(); // closed without an end: the client went away
  const [[ea], [eb]] = await failures;
  assert.match(String(ea), /client aborted/);
  assert.match(String(eb), /client aborted/);
  assert.equal(src.replayable, false);
  assert.equal(src.reader(), undefined);
});

test("an error of the live body (a framing error) reaches every reader as it is", async () => {
  const live = new PassThrough();
  const src = new ReplaySource(live, 1024);
  const a = src.reader()!;
  a.resume();
  const failed = once(a, "error");
  live.destroy(new Error("bad chunk size"));
  const [err] = await failed;
  assert.equal((err as Error).message, "bad chunk size");
  assert.equal(src.replayable, false);
});
