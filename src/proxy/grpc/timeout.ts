// The `grpc-timeout` request header (gRPC over HTTP/2, doc/PROTOCOL-HTTP2.md):
//   grpc-timeout = TimeoutValue TimeoutUnit
//   TimeoutValue = 1 to 8 ASCII digits;  TimeoutUnit = H | M | S | m | u | n
// (hours, minutes, seconds, milliseconds, microseconds, nanoseconds).
//
// The proxy uses it as the request's deadline (the smaller of it and the route's request timeout)
// and passes the remaining time upstream (formatGrpcTimeout), so the app sees the deadline the
// caller set minus what the mesh already spent.
//
// A malformed value is reported as such and the caller decides; weft's edges ignore it (the route's
// timeout applies), as Envoy does: a proxy should not fail a call over a header the server will
// judge itself (gRPC servers answer INTERNAL to a malformed grpc-timeout).

/** Node's timers clamp longer delays to 1 ms (with a warning): a deadline is never longer than this. */
export const MAX_DEADLINE_MS = 2 ** 31 - 1;

/** [multiply, divide] to milliseconds: integers only, so 3000u is exactly 3 ms (3000 × 0.001 is not 3). */
const UNIT_MS: Readonly<Record<string, readonly [number, number]>> = {
  H: [3_600_000, 1],
  M: [60_000, 1],
  S: [1000, 1],
  m: [1, 1],
  u: [1, 1000],
  n: [1, 1_000_000],
};

export type GrpcTimeout = { ok: true; ms: number } | { ok: false; reason: string };

/**
 * The deadline `value` asks for, in whole milliseconds: sub-millisecond parts round up (a 1 ns
 * deadline is 1 ms, not "none"), and values beyond MAX_DEADLINE_MS (e.g. "99999999H", ~11,400
 * years) are capped to it. `ms: 0` ("0S") means the deadline has already passed — unlike a route
 * timeout of 0, it never means "no deadline".
 */
export function parseGrpcTimeout(value: string | string[] | undefined): GrpcTimeout | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    // Repeated headers: ambiguous, so neither is trusted.
    return value.length === 1 ? parseGrpcTimeout(value[0]) : { ok: false, reason: "repeated grpc-timeout" };
  }
  const n = value.length;
  if (n < 2 || n > 9)
    return { ok: false, reason: `grpc-timeout must be 1-8 digits and a unit (got ${describe(value)})` };
  const unit = UNIT_MS[value[n - 1]!];
  if (unit === undefined)
    return { ok: false, reason: `grpc-timeout unit must be one of H M S m u n (got ${describe(value)})` };
  let digits = 0;
  for (let i = 0; i < n - 1; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39)
      return { ok: false, reason: `grpc-timeout value must be digits (got ${describe(value)})` };
    digits = digits * 10 + (c - 0x30);
  }
  return { ok: true, ms: Math.min(MAX_DEADLINE_MS, Math.ceil((digits * unit[0]) / unit[1])) };
}

/**
 * `ms` as a grpc-timeout value for the upstream request: milliseconds while they fit in 8 digits,
 * else seconds, minutes or hours, always rounded up so the app never sees a shorter deadline than
 * the proxy enforces. `ms` ≤ 0 gives "0m" (already expired).
 */
export function formatGrpcTimeout(ms: number): string {
  if (!(ms > 0)) return "0m";
  const whole = Math.ceil(ms);
  if (whole <= 99_999_999) return `${whole}m`;
  for (const [unit, size] of [
    ["S", 1000],
    ["M", 60_000],
    ["H", 3_600_000],
  ] as const) {
    const v = Math.ceil(whole / size);
    if (v <= 99_999_999) return `${v}${unit}`;
  }
  return "99999999H";
}

/** A short, printable rendering of a hostile value for an error message. */
function describe(value: string): string {
  const s = value.length > 20 ? `${value.slice(0, 20)}…` : value;
  return JSON.stringify(s);
}
