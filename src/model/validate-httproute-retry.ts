// HTTPRoute rule timeouts and retry. `timeouts` and `retry.attempts/codes/backoff` are the Gateway
// API's (GEP-1742, GEP-1731); `retry.on/maxBackoff/nonIdempotent/hedge` are weft extensions, stored
// beside them because they only make sense together with a retry policy.
//
// As everywhere in validation, the returned value matters only when nothing was reported: any
// violation means nothing is stored. Only what the user wrote is stored: weft's own defaults (attempts 1, backoff 25ms, ...) are applied
// by the compiler, so a later weft release that improves a default reaches every route that did not
// choose a value.

import type { Checker } from "./checker.ts";
import { compact } from "./checker.ts";
import { formatPath } from "./field-path.ts";
import type { FieldPath } from "./field-path.ts";
import type { HTTPRouteRetry, HTTPRouteRule } from "./resources.ts";
import type { RetryCondition } from "./snapshot.ts";
import { RETRY_DEFAULTS } from "./traffic-defaults.ts";
import { booleanField, durationField, ms, reportDuplicates } from "./validate-values.ts";

export const TIMEOUTS_FIELDS = ["request", "backendRequest"] as const;
export const RETRY_FIELDS = [
  "attempts",
  "codes",
  "backoff",
  "on",
  "maxBackoff",
  "nonIdempotent",
  "hedge",
] as const;
export const HEDGE_FIELDS = ["delay", "maxHedges"] as const;
export const RETRY_CONDITIONS = [
  "5xx",
  "gateway-error",
  "connect-failure",
  "reset",
  "timeout",
] as const satisfies readonly RetryCondition[];

export const RETRY_LIMITS = { attempts: 10, codes: 32, maxHedges: 3 } as const;

type Timeouts = NonNullable<HTTPRouteRule["timeouts"]>;

export function validateTimeouts(c: Checker, path: FieldPath, value: unknown): Timeouts | undefined {
  const raw = c.mapping(path, value, TIMEOUTS_FIELDS);
  if (!raw) return undefined;
  const request = durationField(c, [...path, "request"], raw.request);
  const backendRequest = durationField(c, [...path, "backendRequest"], raw.backendRequest);
  const requestMs = ms(request);
  const backendMs = ms(backendRequest);
  // As the Gateway API's CEL rule: each attempt must fit in the whole request, unless the request
  // timeout is "0s", which disables it.
  if (requestMs !== undefined && backendMs !== undefined && requestMs !== 0 && backendMs > requestMs) {
    c.report(
      [...path, "backendRequest"],
      `must not be longer than ${formatPath([...path, "request"])} (${request}): each attempt is part of the whole request (got ${JSON.stringify(backendRequest)})`,
    );
  }
  return compact({ request, backendRequest });
}

export function validateRetry(c: Checker, path: FieldPath, value: unknown): HTTPRouteRetry | undefined {
  const raw = c.mapping(path, value, RETRY_FIELDS);
  if (!raw) return undefined;
  const attempts = c.integer([...path, "attempts"], raw.attempts, { min: 0, max: RETRY_LIMITS.attempts });

  const codesRaw = c.list([...path, "codes"], raw.codes, { max: RETRY_LIMITS.codes });
  // The Gateway API allows only 4xx and 5xx here: retrying a success or a redirect makes no sense.
  const codes = codesRaw?.map((code, i) =>
    c.integer([...path, "codes", i], code, { required: true, min: 400, max: 599 }),
  );
  if (codes) reportDuplicates(c, [...path, "codes"], codes);

  const onRaw = c.list([...path, "on"], raw.on, { max: RETRY_CONDITIONS.length });
  const on = onRaw?.map((cond, i) => c.oneOf([...path, "on", i], cond, RETRY_CONDITIONS, { required: true }));
  if (on) reportDuplicates(c, [...path, "on"], on);

  const backoff = durationField(c, [...path, "backoff"], raw.backoff);
  const maxBackoff = durationField(c, [...path, "maxBackoff"], raw.maxBackoff);
  const baseMs = ms(backoff) ?? RETRY_DEFAULTS.backoffMs;
  const maxMs = ms(maxBackoff);
  // Compared only against a valid (or default) backoff: an invalid one was reported already.
  const baseKnown = raw.backoff == null || backoff !== undefined;
  if (baseKnown && maxMs !== undefined && maxMs < baseMs) {
    const what = backoff === undefined ? `the default backoff (${baseMs}ms)` : `backoff (${backoff})`;
    c.report(
      [...path, "maxBackoff"],
      `must be at least ${what}: it caps the growing delay (got ${JSON.stringify(maxBackoff)})`,
    );
  }
  const nonIdempotent = booleanField(c, [...path, "nonIdempotent"], raw.nonIdempotent);

  let hedge: HTTPRouteRetry["hedge"];
  const rawHedge = c.mapping([...path, "hedge"], raw.hedge, HEDGE_FIELDS);
  if (rawHedge) {
    // A zero delay would send every request twice at once: double the load for no measured reason.
    const delay = durationField(c, [...path, "hedge", "delay"], rawHedge.delay, {
      required: true,
      positive: true,
    });
    const maxHedges = c.integer([...path, "hedge", "maxHedges"], rawHedge.maxHedges, {
      min: 1,
      max: RETRY_LIMITS.maxHedges,
    });
    if (delay !== undefined) hedge = compact({ delay, maxHedges });
  }

  return compact({
    attempts,
    codes: codes?.filter((x) => x !== undefined),
    backoff,
    on: on?.filter((x) => x !== undefined),
    maxBackoff,
    nonIdempotent,
    hedge,
  });
}
