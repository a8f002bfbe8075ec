// The token bucket on a hand-driven clock: burst, refill, wait times, per-source separation, and the
// bounded map of per-source buckets.

import assert from "node:assert/strict";
import { test } from "node:test";
import { RateLimiter } from "./rate-limiter.ts";

function clock(start = 1_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

/** How many of `n` back-to-back requests from `source` pass. */
function passes(l: RateLimiter, n: number, source = "a"): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.take(source) === 0) ok++;
  return ok;
}

test("a full bucket lets `burst` requests through at once, then refuses with the wait for the next token", () => {
  const c = clock();
  const l = new RateLimiter({ requestsPerSecond: 5, burst: 3, perSource: false }, c.now);
  assert.equal(passes(l, 10), 3);
  // One token every 200 ms: the refusal says how long until it.
  assert.equal(l.take("a"), 200);
  c.t += 150;
  assert.equal(l.take("a"), 50);
  c.t += 50;
  assert.equal(l.take("a"), 0);
  assert.equal(l.take("a"), 200);
});

test("tokens refill at requestsPerSecond and never beyond burst", () => {
  const c = clock();
  const l = new RateLimiter({ requestsPerSecond: 10, burst: 5, perSource: false }, c.now);
  assert.equal(passes(l, 5), 5);
  c.t += 300; // three tokens
  assert.equal(passes(l, 10), 3);
  c.t += 60_000; // a long idle period fills the bucket, but only to burst
  assert.equal(passes(l, 10), 5);
});

test("fractional rates: one request every 2 s", () => {
  const c = clock();
  const l = new RateLimiter({ requestsPerSecond: 0.5, burst: 1, perSource: false }, c.now);
  assert.equal(l.take("a"), 0);
  assert.equal(l.take("a"), 2000);
  c.t += 1999;
  assert.ok(l.take("a") > 0);
  c.t += 1;
  assert.equal(l.take("a"), 0);
});

test("without perSource every caller shares the instance's bucket", () => {
  const c = clock();
  const l = new RateLimiter({ requestsPerSecond: 1, burst: 2, perSource: false }, c.now);
  assert.equal(l.take("a"), 0);
  assert.equal(l.take("b"), 0);
  assert.ok(l.take("c") > 0);
  assert.equal(l.buckets, 0, "no per-source map at all");
});

test("perSource: each identity has its own bucket", () => {
  const c = clock();
  const l = new RateLimiter({ requestsPerSecond: 1, burst: 2, perSource: true }, c.now);
  assert.equal(passes(l, 5, "spiffe://weft.local/ns/default/sa/a"), 2);
  assert.equal(passes(l, 5, "spiffe://weft.local/ns/default/sa/b"), 2);
  assert.ok(l.take("spiffe://weft.local/ns/default/sa/a") > 0);
  assert.equal(l.buckets, 2);
});

test("perSource: idle buckets are evicted once full again, which changes no decision", () => {
  const c = clock();
  // Refill from empty to full takes 2 s.
  const l = new RateLimiter({ requestsPerSecond: 1, burst: 2, perSource: true }, c.now);
  for (let i = 0; i < 100; i++) l.take(`id-${i}`);
  assert.equal(l.buckets, 100);
  c.t += 1000;
  // Half full: not evictable yet, and a returning caller still has only what it earned.
  assert.equal(passes(l, 1, "new-1"), 1);
  assert.equal(l.buckets, 101);
  assert.equal(passes(l, 5, "id-0"), 1 + 1, "1 left after the first take + 1 refilled");
  c.t += 2000;
  l.take("new-2"); // a new source triggers the sweep
  assert.ok(l.buckets <= 3, `idle buckets swept, ${l.buckets} left`);
  assert.equal(passes(l, 5, "id-50"), 2, "an evicted caller starts with a full bucket, as it would have had");
});

test("perSource: the number of buckets is capped; past the cap newcomers share one overflow bucket", () => {
  const c = clock();
  const l = new RateLimiter({ requestsPerSecond: 1, burst: 1, perSource: true }, c.now, 50);
  for (let i = 0; i < 50; i++) assert.equal(l.take(`id-${i}`), 0);
  assert.equal(l.buckets, 50);
  // A flood of fresh identities: the map stays at its cap and they are limited as a group.
  let ok = 0;
  for (let i = 0; i < 10_000; i++) if (l.take(`flood-${i}`) === 0) ok++;
  assert.equal(l.buckets, 50);
  assert.equal(ok, 1, "the flood shares the overflow bucket (burst 1)");
  // Known callers keep their own buckets.
  c.t += 1000;
  assert.equal(l.take("id-7"), 0);
  // Once the old buckets have been idle long enough to be full, they give way to new callers.
  c.t += 5000;
  assert.equal(l.take("late"), 0);
  assert.ok(l.buckets < 50);
});

test("sameSettings tells an unchanged limit (keep the buckets) from a changed one", () => {
  const l = new RateLimiter({ requestsPerSecond: 5, burst: 5, perSource: false });
  assert.ok(l.sameSettings({ requestsPerSecond: 5, burst: 5, perSource: false }));
  assert.ok(!l.sameSettings({ requestsPerSecond: 5, burst: 6, perSource: false }));
  assert.ok(!l.sameSettings({ requestsPerSecond: 4, burst: 5, perSource: false }));
  assert.ok(!l.sameSettings({ requestsPerSecond: 5, burst: 5, perSource: true }));
});
