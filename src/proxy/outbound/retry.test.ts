import assert from "node:assert/strict";
import { test } from "node:test";
import type { RetryPolicy } from "../../model/snapshot.ts";
import { backoffMs, methodRetriable, retryReason, RetryBudget } from "./retry.ts";

const policy = (p: Partial<RetryPolicy> = {}): RetryPolicy => ({
  attempts: 2,
  on: ["connect-failure", "reset", "gateway-error"],
  codes: [],
  backoff: { baseMs: 25, maxMs: 250 },
  nonIdempotent: false,
  maxBufferedBodyBytes: 65536,
  ...p,
});

test("retry conditions: gateway errors, listed codes, 5xx, connection failures", () => {
  const p = policy();
  assert.equal(retryReason(p, { kind: "status", status: 503 }), "gateway-error");
  assert.equal(retryReason(p, { kind: "status", status: 500 }), undefined);
  assert.equal(retryReason(p, { kind: "status", status: 200 }), undefined);
  assert.equal(retryReason(p, { kind: "connect-failure" }), "connect-failure");
  assert.equal(retryReason(p, { kind: "timeout" }), undefined);
  assert.equal(retryReason(policy({ on: ["5xx"] }), { kind: "status", status: 500 }), "5xx");
  assert.equal(retryReason(policy({ on: [], codes: [429] }), { kind: "status", status: 429 }), "status");
  assert.equal(retryReason(policy({ on: ["timeout"] }), { kind: "timeout" }), "timeout");
});

test("only idempotent methods unless the policy says otherwise", () => {
  assert.equal(methodRetriable(policy(), "GET"), true);
  assert.equal(methodRetriable(policy(), "PUT"), true);
  assert.equal(methodRetriable(policy(), "POST"), false);
  assert.equal(methodRetriable(policy({ nonIdempotent: true }), "POST"), true);
});

test("backoff: full jitter under an exponential ceiling capped at maxMs", () => {
  const p = policy();
  const top = () => 0.999999;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((n) => backoffMs(p, n, top)),
    [24, 49, 99, 199, 249, 249],
  );
  assert.equal(
    backoffMs(p, 3, () => 0),
    0,
  );
  assert.equal(
    backoffMs(p, 3, () => 0.5),
    50,
  );
});

test("retry budget: percent of requests plus a minimum rate, over a sliding 10 s window", () => {
  let now = 0;
  const b = new RetryBudget(20, 1, () => now);
  // Quiet service: the minimum (1/s over 10 s = 10) is there even without requests.
  let granted = 0;
  for (let i = 0; i < 50; i++) if (b.tryRetry()) granted++;
  assert.equal(granted, 10);
  // 100 requests add 20 more.
  for (let i = 0; i < 100; i++) b.recordRequest();
  granted = 0;
  for (let i = 0; i < 50; i++) if (b.tryRetry()) granted++;
  assert.equal(granted, 20);
  // 10 s later the window has moved on: the old retries and requests no longer count.
  now += 10_000;
  granted = 0;
  for (let i = 0; i < 50; i++) if (b.tryRetry()) granted++;
  assert.equal(granted, 10);
});

test("retry budget under a full outage: retries stay near percent of the load", () => {
  let now = 0;
  const b = new RetryBudget(20, 0, () => now);
  let retries = 0;
  for (let i = 0; i < 5000; i++) {
    now += 2; // 500 req/s
    b.recordRequest();
    // Every request fails and would like 3 retries.
    for (let k = 0; k < 3; k++) if (b.tryRetry()) retries++;
  }
  const ratio = retries / 5000;
  assert.ok(ratio > 0.15 && ratio <= 0.21, `retries per request ${ratio}`);
});
