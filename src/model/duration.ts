// Gateway API durations (GEP-2257): "1h", "10s", "500ms", "1m30s". The format is deliberately smaller
// than Go's time.ParseDuration — no fractions, no signs, no µs/ns, at most four parts of at most five
// digits — so every implementation parses a given string to the same value. weft uses the same format
// for its own kinds' durations (TrafficPolicy, FaultInjection) so there is one syntax to learn.

import type { StringRule } from "./checker.ts";

/** The Gateway API's own pattern for a Duration, as its CRDs enforce it. */
export const GATEWAY_DURATION_PATTERN = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

/**
 * Milliseconds in a Gateway API duration, or undefined when `s` does not follow the format.
 * "1m30s" → 90000, "500ms" → 500, "0s" → 0. Repeated units add up ("1s1s" → 2000), as in GEP-2257,
 * which constrains only the shape of the string.
 */
export function parseGatewayDuration(s: string): number | undefined {
  if (!GATEWAY_DURATION_PATTERN.test(s)) return undefined;
  let ms = 0;
  // "ms" must be tried before "m": in "5ms" the unit is milliseconds, not minutes followed by "s".
  for (const [, digits, unit] of s.matchAll(/([0-9]+)(ms|h|m|s)/g)) ms += Number(digits) * UNIT_MS[unit];
  return ms;
}

/** StringRule for a Gateway API duration; the message shows the expected shape with examples. */
export const gatewayDuration: StringRule = (s) =>
  parseGatewayDuration(s) === undefined
    ? 'must be a duration such as "500ms", "10s" or "1m30s" (up to four parts of 1–5 digits, each followed by h, m, s or ms)'
    : undefined;
