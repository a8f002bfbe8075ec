import assert from "node:assert/strict";
import { test } from "node:test";
import { formatGrpcTimeout, MAX_DEADLINE_MS, parseGrpcTimeout } from "./timeout.ts";

test("parseGrpcTimeout: every unit, rounded up to whole milliseconds", () => {
  assert.deepEqual(parseGrpcTimeout("1H"), { ok: true, ms: 3_600_000 });
  assert.deepEqual(parseGrpcTimeout("2M"), { ok: true, ms: 120_000 });
  assert.deepEqual(parseGrpcTimeout("3S"), { ok: true, ms: 3000 });
  assert.deepEqual(parseGrpcTimeout("250m"), { ok: true, ms: 250 });
  assert.deepEqual(parseGrpcTimeout("1500u"), { ok: true, ms: 2 });
  assert.deepEqual(parseGrpcTimeout("1n"), { ok: true, ms: 1 });
  // Exact integer arithmetic: 3000 × 0.001 would be 3.0000000000000004 and round up to 4.
  assert.deepEqual(parseGrpcTimeout("3000u"), { ok: true, ms: 3 });
  assert.deepEqual(parseGrpcTimeout("3000000n"), { ok: true, ms: 3 });
  assert.deepEqual(parseGrpcTimeout("99999999n"), { ok: true, ms: 100 });
  assert.deepEqual(parseGrpcTimeout("00000010m"), { ok: true, ms: 10 });
});

test("parseGrpcTimeout: 0 is an expired deadline, not 'none'", () => {
  assert.deepEqual(parseGrpcTimeout("0S"), { ok: true, ms: 0 });
});

test("parseGrpcTimeout: huge values are capped to what a timer can wait", () => {
  assert.deepEqual(parseGrpcTimeout("99999999H"), { ok: true, ms: MAX_DEADLINE_MS });
  assert.deepEqual(parseGrpcTimeout("99999999S"), { ok: true, ms: MAX_DEADLINE_MS });
  assert.deepEqual(parseGrpcTimeout("2147483m"), { ok: true, ms: 2_147_483 });
});

test("parseGrpcTimeout: absent is undefined; malformed values say what is wrong", () => {
  assert.equal(parseGrpcTimeout(undefined), undefined);
  const cases: [string | string[], RegExp][] = [
    ["", /1-8 digits and a unit/],
    ["S", /1-8 digits and a unit/],
    ["123456789S", /1-8 digits and a unit/],
    ["1x", /unit must be one of H M S m u n .*"1x"/],
    ["1s", /unit must be one of/],
    ["10", /unit must be one of/],
    ["-1S", /must be digits/],
    [" 1S", /must be digits/],
    ["1.5S", /must be digits/],
    ["１S", /must be digits/],
    ["1\r\nS", /must be digits/],
    [["1S", "2S"], /repeated/],
  ];
  for (const [v, re] of cases) {
    const r = parseGrpcTimeout(v);
    assert.equal(r?.ok, false, JSON.stringify(v));
    assert.match((r as { reason: string }).reason, re, JSON.stringify(v));
  }
  assert.deepEqual(parseGrpcTimeout(["5m"]), { ok: true, ms: 5 });
  // A long hostile value is not echoed whole.
  const r = parseGrpcTimeout(`${"9".repeat(10_000)}S`) as { ok: false; reason: string };
  assert.ok(r.reason.length < 120, r.reason);
});

test("formatGrpcTimeout: fits 8 digits, rounds up, round-trips", () => {
  assert.equal(formatGrpcTimeout(1500), "1500m");
  assert.equal(formatGrpcTimeout(0.2), "1m");
  assert.equal(formatGrpcTimeout(0), "0m");
  assert.equal(formatGrpcTimeout(-5), "0m");
  assert.equal(formatGrpcTimeout(Number.NaN), "0m");
  assert.equal(formatGrpcTimeout(100_000_000), "100000S");
  assert.equal(formatGrpcTimeout(MAX_DEADLINE_MS), "2147484S");
  assert.equal(formatGrpcTimeout(1e20), "99999999H");
  for (const ms of [1, 999, 99_999_999, 100_000_001, MAX_DEADLINE_MS]) {
    const back = parseGrpcTimeout(formatGrpcTimeout(ms));
    assert.ok(back?.ok && back.ms >= ms && back.ms - ms < 1000, `${ms} → ${formatGrpcTimeout(ms)}`);
  }
});
