// Backoff: full jitter over a window that doubles up to a cap, Retry-After obeyed with jitter on top,
// and only a busy or unreachable control plane retried.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiCallError } from "../../client/api-client.ts";
import {
  fullJitter,
  isRetryable,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
  retryDelayMs,
  withRetry,
} from "./backoff.ts";

const policy = { baseMs: 100, capMs: 5_000 };

test("full jitter: uniform over [0, window), the window doubling from base up to the cap", () => {
  assert.equal(
    fullJitter(0, policy, () => 0),
    0,
    "the low end is zero, not half the window",
  );
  assert.equal(
    fullJitter(0, policy, () => 0.999),
    99,
  );
  assert.equal(
    fullJitter(3, policy, () => 0.5),
    400,
  );
  assert.equal(
    fullJitter(10, policy, () => 0.999),
    4995,
    "capped",
  );
  assert.equal(
    fullJitter(5000, policy, () => 0.5),
    2500,
    "huge attempt counts do not overflow",
  );
});

test("a thousand proxies retrying at once spread over the whole window", () => {
  const waits = Array.from({ length: 1000 }, () => fullJitter(6, policy));
  const buckets = new Array(10).fill(0);
  for (const w of waits) buckets[Math.floor(w / 500)]++;
  // Equal jitter would leave the first half empty; full jitter fills every tenth of the window.
  for (const [i, n] of buckets.entries()) assert.ok(n > 50, `tenth ${i} of the window has ${n} retries`);
});

test("Retry-After is a floor with jitter on top, and is bounded", () => {
  assert.equal(
    retryDelayMs(0, policy, 4000, () => 0),
    4000,
  );
  assert.equal(
    retryDelayMs(0, policy, 4000, () => 0.5),
    4050,
  );
  assert.equal(
    retryDelayMs(2, policy, undefined, () => 0.5),
    200,
  );
  assert.equal(
    retryDelayMs(0, policy, 86_400_000, () => 0),
    MAX_RETRY_AFTER_MS,
  );
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(" 12 "), 12_000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(parseRetryAfter("soon"), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
});

test("busy or unreachable is retried; a refusal is not", () => {
  assert.equal(isRetryable(new ApiCallError(503, "overloaded", "busy", {})), true);
  assert.equal(isRetryable(new ApiCallError(429, "rate_limited", "slow down", {})), true);
  assert.equal(isRetryable(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })), true);
  assert.equal(isRetryable(new ApiCallError(401, "unauthenticated", "bad token", {})), false);
  assert.equal(isRetryable(new ApiCallError(403, "forbidden", "no", {})), false);
});

test("withRetry waits what the server asked plus jitter, and gives up at the deadline", async () => {
  let now = 0;
  const waits: number[] = [];
  const sleep = async (ms: number) => {
    waits.push(ms);
    now += ms;
  };
  let calls = 0;
  const result = await withRetry(
    async () => {
      if (++calls < 3) throw new ApiCallError(503, "overloaded", "busy", {}, 2000);
      return "cert";
    },
    { policy, deadlineMs: 60_000, now: () => now, sleep, random: () => 0.5 },
  );
  assert.equal(result, "cert");
  assert.deepEqual(waits, [2050, 2100]);

  now = 0;
  const refused = new ApiCallError(403, "forbidden", "not yours", {});
  await assert.rejects(
    withRetry(
      async () => {
        throw refused;
      },
      { policy, deadlineMs: 60_000, now: () => now, sleep },
    ),
    refused,
  );
  const busy = new ApiCallError(503, "overloaded", "busy", {}, 10_000);
  let tries = 0;
  await assert.rejects(
    withRetry(
      async () => {
        tries++;
        throw busy;
      },
      { policy, deadlineMs: 25_000, now: () => now, sleep, random: () => 0 },
    ),
    busy,
  );
  assert.equal(tries, 3, "10 s + 10 s fit in 25 s; a third wait would not");
});
