// The checks snapshot-consistency.ts is written in: each takes a value that may be anything (a
// snapshot comes off the wire, so every field may be missing, of the wrong type or absurdly large),
// records what is wrong at its field path, and returns the value only when it has the expected shape.
// Nothing here throws on bad input, and the number of violations kept is bounded, so a hostile
// snapshot with a million bad endpoints costs one pass and a short report.

import { isIP } from "node:net";

/** One thing wrong with a snapshot: `clusters["api.default"].endpoints[2].port: must be a port ...`. */
export interface SnapshotViolation {
  path: string;
  message: string;
}

/** Violations kept per check; the count of the rest is still reported. */
export const MAX_SNAPSHOT_VIOLATIONS = 50;

const MAX_SHOWN_CHARS = 60;

export class SnapshotWalk {
  readonly violations: SnapshotViolation[] = [];
  /** Violations found beyond MAX_SNAPSHOT_VIOLATIONS (not kept). */
  dropped = 0;

  report(path: string, message: string): void {
    if (this.violations.length < MAX_SNAPSHOT_VIOLATIONS) this.violations.push({ path, message });
    else this.dropped++;
  }

  /** A plain object (not an array, not null): its own fields may then be read. */
  object(path: string, v: unknown, optional = false): Record<string, unknown> | undefined {
    if (v === undefined && optional) return undefined;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    this.report(path, v === undefined ? "is missing" : `must be an object (got ${shown(v)})`);
    return undefined;
  }

  array(path: string, v: unknown, optional = false): unknown[] | undefined {
    if (v === undefined && optional) return undefined;
    if (Array.isArray(v)) return v;
    this.report(path, v === undefined ? "is missing" : `must be a list (got ${shown(v)})`);
    return undefined;
  }

  string(
    path: string,
    v: unknown,
    opts: { optional?: boolean; max?: number; empty?: boolean } = {},
  ): string | undefined {
    if (v === undefined && opts.optional) return undefined;
    const max = opts.max ?? 1024;
    if (typeof v === "string" && (opts.empty || v.length > 0) && v.length <= max) return v;
    const what = opts.empty ? "a string" : "a non-empty string";
    this.report(
      path,
      v === undefined ? "is missing" : `must be ${what} of at most ${max} characters (got ${shown(v)})`,
    );
    return undefined;
  }

  /** A number in [min, max]; integers only unless `fraction`. */
  number(
    path: string,
    v: unknown,
    opts: { min: number; max: number; optional?: boolean; fraction?: boolean },
  ): number | undefined {
    if (v === undefined && opts.optional) return undefined;
    const ok =
      typeof v === "number" &&
      Number.isFinite(v) &&
      (opts.fraction || Number.isInteger(v)) &&
      v >= opts.min &&
      v <= opts.max;
    if (ok) return v;
    const what = opts.fraction ? "a number" : "an integer";
    this.report(path, `must be ${what} between ${opts.min} and ${opts.max} (got ${shown(v)})`);
    return undefined;
  }

  port(path: string, v: unknown, allowZero = false): number | undefined {
    return this.number(path, v, { min: allowZero ? 0 : 1, max: 65535 });
  }

  /** Milliseconds: 0 up to about 24 days (what a timer can hold). */
  millis(path: string, v: unknown, optional = true): number | undefined {
    return this.number(path, v, { min: 0, max: 2 ** 31 - 1, optional });
  }

  percent(path: string, v: unknown): number | undefined {
    return this.number(path, v, { min: 0, max: 100, fraction: true });
  }

  boolean(path: string, v: unknown, optional = false): boolean | undefined {
    if (v === undefined && optional) return undefined;
    if (typeof v === "boolean") return v;
    this.report(path, `must be true or false (got ${shown(v)})`);
    return undefined;
  }

  oneOf<T extends string>(path: string, v: unknown, allowed: readonly T[]): T | undefined {
    if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
    this.report(path, `must be one of ${allowed.join(", ")} (got ${shown(v)})`);
    return undefined;
  }

  ip(path: string, v: unknown): string | undefined {
    if (typeof v === "string" && isIP(v) !== 0) return v;
    this.report(path, `must be an IP address (got ${shown(v)})`);
    return undefined;
  }

  /** A regular expression as the proxy compiles it: anchored, matching the whole value. */
  regex(path: string, v: unknown): void {
    const source = this.string(path, v, { max: 4096 });
    if (source === undefined) return;
    try {
      // On its own too: "a)|(b" only compiles once wrapped, and would then match unanchored.
      new RegExp(source);
      new RegExp(`^(?:${source})$`);
    } catch (err) {
      this.report(path, `is not a valid regular expression: ${(err as Error).message}`);
    }
  }

  /** A string-to-string map (labels). */
  stringMap(path: string, v: unknown): void {
    const m = this.object(path, v);
    if (!m) return;
    for (const [k, val] of Object.entries(m))
      if (typeof val !== "string") this.report(`${path}${key(k)}`, `must be a string (got ${shown(val)})`);
  }
}

/** `["api.default"]`: a map key as it appears in a field path. */
export function key(k: string): string {
  return `[${quoted(k)}]`;
}

/** A string from the snapshot, quoted and cut short. */
export function quoted(k: string): string {
  return JSON.stringify(k.length > MAX_SHOWN_CHARS ? `${k.slice(0, MAX_SHOWN_CHARS)}...` : k);
}

/** A value as a violation shows it: its type, and short values themselves. */
function shown(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > MAX_SHOWN_CHARS ? `${s.slice(0, MAX_SHOWN_CHARS)}...` : s;
}

export function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}
