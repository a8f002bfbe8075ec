// Value checks the traffic-management validators share, written in the Checker's style: record a
// violation at the field's position and return the value only when it is right. They live beside the
// Checker rather than in it because only the newer kinds need them (booleans, fractional percents,
// durations, "exactly one of").

import type { Checker, Presence } from "./checker.ts";
import { describeValue, typeName } from "./describe.ts";
import { gatewayDuration, parseGatewayDuration } from "./duration.ts";
import { formatPath } from "./field-path.ts";
import type { FieldPath } from "./field-path.ts";

export function booleanField(
  c: Checker,
  path: FieldPath,
  value: unknown,
  options: Presence = {},
): boolean | undefined {
  if (value === undefined || value === null) {
    if (options.required) c.report(path, "is required");
    return undefined;
  }
  if (typeof value === "boolean") return value;
  // YAML 1.2 reads `yes`/`on` as strings; say so, since YAML 1.1 tools would have made them booleans.
  const quoted = typeof value === "string" ? "; write true or false without quotes" : "";
  c.report(path, `must be true or false (got ${typeName(value)} ${describeValue(value)}${quoted})`);
  return undefined;
}

/**
 * A number (fractions allowed) in [min, max]; `exclusiveMin` turns the lower bound into "greater than",
 * for rates where 0 would mean "never" and is certainly a mistake.
 */
export function numberField(
  c: Checker,
  path: FieldPath,
  value: unknown,
  options: Presence & { min: number; max: number; exclusiveMin?: boolean },
): number | undefined {
  if (value === undefined || value === null) {
    if (options.required) c.report(path, "is required");
    return undefined;
  }
  const low = options.exclusiveMin ? value !== options.min : true;
  if (
    typeof value === "number" &&
    Number.isFinite(value) &&
    value >= options.min &&
    value <= options.max &&
    low
  )
    return value;
  const range = options.exclusiveMin
    ? `greater than ${options.min} and at most ${options.max}`
    : `between ${options.min} and ${options.max}`;
  c.report(path, `must be a number ${range} (got ${describeValue(value)})`);
  return undefined;
}

/** A percentage: a number from 0 to 100, fractions allowed (0.5 = one request in 200). */
export function percentField(
  c: Checker,
  path: FieldPath,
  value: unknown,
  options: Presence = {},
): number | undefined {
  return numberField(c, path, value, { ...options, min: 0, max: 100 });
}

/**
 * A Gateway API duration string ("500ms", "1m30s"), kept as written for storage. `positive` rejects
 * "0s" for fields where zero makes no sense (a health-check interval, an ejection time).
 */
export function durationField(
  c: Checker,
  path: FieldPath,
  value: unknown,
  options: Presence & { positive?: boolean } = {},
): string | undefined {
  // A bare number is the most likely mistake (`timeout: 10`): say that the unit is missing.
  if (typeof value === "number") {
    c.report(path, `must be a duration with a unit, such as "${value}s" or "${value}ms" (got ${value})`);
    return undefined;
  }
  const s = c.string(path, value, { ...options, rule: gatewayDuration });
  if (s === undefined) return undefined;
  if (options.positive && parseGatewayDuration(s) === 0) {
    c.report(path, `must be longer than 0 (got ${JSON.stringify(s)})`);
    return undefined;
  }
  return s;
}

/** Milliseconds of a duration that durationField accepted; undefined stays undefined. */
export function ms(duration: string | undefined): number | undefined {
  return duration === undefined ? undefined : parseGatewayDuration(duration);
}

/**
 * Exactly one of `fields` must be present (not undefined/null) in `record`. Reported once, at the
 * mapping: the user has to decide which one to keep, so no single field is "the" wrong one.
 */
export function exactlyOne(
  c: Checker,
  path: FieldPath,
  record: Record<string, unknown>,
  fields: readonly string[],
): boolean {
  const set = fields.filter((f) => record[f] !== undefined && record[f] !== null);
  if (set.length === 1) return true;
  const names = fields.join(", ");
  c.report(
    path,
    set.length === 0
      ? `must set exactly one of ${names}`
      : `must set exactly one of ${names} (got ${set.join(" and ")})`,
  );
  return false;
}

/** Reports each repeated item of a list of strings or numbers at its own position. */
export function reportDuplicates(
  c: Checker,
  path: FieldPath,
  items: readonly (string | number | undefined)[],
  normalize: (v: string | number) => string | number = (v) => v,
): void {
  const first = new Map<string | number, number>();
  items.forEach((item, i) => {
    if (item === undefined) return;
    const key = normalize(item);
    const at = first.get(key);
    if (at === undefined) first.set(key, i);
    else c.report([...path, i], `duplicate ${JSON.stringify(item)} (also ${formatPath([...path, at])})`);
  });
}
