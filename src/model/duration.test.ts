import { test } from "node:test";
import assert from "node:assert/strict";
import { gatewayDuration, parseGatewayDuration } from "./duration.ts";

test("Gateway API durations parse to milliseconds, units largest to smallest or in any order", () => {
  assert.equal(parseGatewayDuration("500ms"), 500);
  assert.equal(parseGatewayDuration("10s"), 10_000);
  assert.equal(parseGatewayDuration("1m30s"), 90_000);
  assert.equal(parseGatewayDuration("2h"), 7_200_000);
  assert.equal(parseGatewayDuration("1h2m3s4ms"), 3_723_004);
  // "ms" is one unit, not minutes then an "s": 5 milliseconds, not 5 minutes.
  assert.equal(parseGatewayDuration("5ms"), 5);
  assert.equal(parseGatewayDuration("1m5ms"), 60_005);
  assert.equal(parseGatewayDuration("0s"), 0);
  assert.equal(parseGatewayDuration("99999ms"), 99_999);
});

test("anything outside the GEP-2257 format is rejected", () => {
  for (const bad of [
    "",
    "10",
    "1.5s",
    "-1s",
    "1d",
    "1us",
    "100000ms", // six digits
    "1h1m1s1ms1h", // five parts
    " 1s",
    "1S",
    "1s ",
  ]) {
    assert.equal(parseGatewayDuration(bad), undefined, JSON.stringify(bad));
    assert.match(gatewayDuration(bad) ?? "", /must be a duration such as "500ms"/, JSON.stringify(bad));
  }
  assert.equal(gatewayDuration("1m30s"), undefined);
});
