// The field checker every kind's validator is written with.
//
// Each method checks one value found at one path, records a violation (with the path's source
// position) when it is wrong, and returns the value only when it is right — so validators read as a
// description of the schema and build the clean output resource as they go. Nothing throws and nothing
// stops early: a validator walks the whole resource and the caller gets every violation at once.

import { describeValue, typeName } from "./describe.ts";
import { formatPath } from "./field-path.ts";
import type { FieldPath } from "./field-path.ts";
import type { ParsedResource } from "./parse.ts";
import { didYouMean } from "./suggest.ts";
import type { Violation } from "./violation.ts";
import type { LocateOptions } from "./yaml-locate.ts";

/** A syntax rule: undefined when `s` is fine, else what is wrong with it ("must start with '/'"). */
export type StringRule = (s: string) => string | undefined;

export interface Presence {
  /** Report "is required" when absent (undefined or null). */
  required?: boolean;
}

export interface MappingOptions extends Presence {
  /**
   * Fields of the upstream schema (Gateway API, Kubernetes) that weft does not implement yet; reported
   * as unsupported rather than unknown, so users know the spelling is right.
   */
  unsupported?: readonly string[];
}

export class Checker {
  readonly violations: Violation[] = [];
  readonly parsed: ParsedResource;
  /** Filled in as soon as the envelope has them, so every violation names its resource. */
  kind?: string;
  name?: string;

  constructor(parsed: ParsedResource) {
    this.parsed = parsed;
  }

  report(path: FieldPath, message: string, options?: LocateOptions): void {
    const { line, column } = this.parsed.pos(path, options);
    const v: Violation = { file: this.parsed.file, line, column, path: formatPath(path), message };
    if (this.kind !== undefined) v.kind = this.kind;
    if (this.name !== undefined) v.name = this.name;
    this.violations.push(v);
  }

  /** A mapping that may hold only `fields`; every other key is reported, with a suggestion when close. */
  mapping(
    path: FieldPath,
    value: unknown,
    fields: readonly string[],
    options: MappingOptions = {},
  ): Record<string, unknown> | undefined {
    if (this.absent(path, value, options)) return undefined;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.report(path, `must be a mapping (got ${describeValue(value)})`);
      return undefined;
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (fields.includes(key)) continue;
      if (options.unsupported?.includes(key)) {
        this.report([...path, key], `field ${JSON.stringify(key)} is not supported by weft yet`, {
          key: true,
        });
        continue;
      }
      const hint = didYouMean(key, fields);
      const known = hint ? "" : ` (known fields: ${fields.join(", ")})`;
      this.report([...path, key], `unknown field ${JSON.stringify(key)}${hint}${known}`, { key: true });
    }
    return record;
  }

  /** A list of at most `max` items. Items are returned even when there are too many, so they get checked. */
  list(
    path: FieldPath,
    value: unknown,
    options: Presence & { min?: number; max?: number } = {},
  ): unknown[] | undefined {
    if (this.absent(path, value, options)) return undefined;
    if (!Array.isArray(value)) {
      this.report(path, `must be a list (got ${describeValue(value)})`);
      return undefined;
    }
    if (options.min !== undefined && value.length < options.min) {
      this.report(path, `must have at least ${options.min} ${plural(options.min, "item")}`);
    }
    if (options.max !== undefined && value.length > options.max) {
      this.report(
        path,
        `must have at most ${options.max} ${plural(options.max, "item")} (got ${value.length})`,
      );
    }
    return value;
  }

  string(
    path: FieldPath,
    value: unknown,
    options: Presence & { rule?: StringRule } = {},
  ): string | undefined {
    if (this.absent(path, value, options)) return undefined;
    if (typeof value !== "string") {
      const quote =
        typeof value === "number" || typeof value === "boolean" ? "; quote it to make it text" : "";
      this.report(path, `must be a string (got ${typeName(value)} ${describeValue(value)}${quote})`);
      return undefined;
    }
    const problem = options.rule?.(value);
    if (problem !== undefined) {
      this.report(path, `${problem} (got ${describeValue(value)})`);
      return undefined;
    }
    return value;
  }

  integer(
    path: FieldPath,
    value: unknown,
    options: Presence & { min: number; max: number },
  ): number | undefined {
    if (this.absent(path, value, options)) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < options.min || value > options.max) {
      this.report(
        path,
        `must be an integer between ${options.min} and ${options.max} (got ${describeValue(value)})`,
      );
      return undefined;
    }
    return value;
  }

  /** A port number, 1–65535. */
  port(path: FieldPath, value: unknown, options: Presence = {}): number | undefined {
    return this.integer(path, value, { ...options, min: 1, max: 65535 });
  }

  /** One of a fixed set of strings, case-sensitive as in the upstream schemas; suggests the closest. */
  oneOf<T extends string>(
    path: FieldPath,
    value: unknown,
    allowed: readonly T[],
    options: Presence = {},
  ): T | undefined {
    if (this.absent(path, value, options)) return undefined;
    if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
    const hint = typeof value === "string" ? didYouMean(value, allowed) : "";
    const list = allowed.map((a) => JSON.stringify(a)).join(", ");
    this.report(path, `must be one of ${list} (got ${describeValue(value)})${hint}`);
    return undefined;
  }

  /** A string → string mapping such as labels: every key and value checked by its rule. */
  stringMap(
    path: FieldPath,
    value: unknown,
    rules: { key: StringRule; value?: StringRule },
    options: Presence = {},
  ): Record<string, string> | undefined {
    if (this.absent(path, value, options)) return undefined;
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.report(path, `must be a mapping of strings to strings (got ${describeValue(value)})`);
      return undefined;
    }
    const out: Record<string, string> = {};
    let ok = true;
    for (const [k, v] of Object.entries(value)) {
      const keyProblem = rules.key(k);
      if (keyProblem !== undefined) {
        this.report([...path, k], `invalid key ${JSON.stringify(k)}: ${keyProblem}`, { key: true });
        ok = false;
      }
      // A null value is a mistake here (`version:` with nothing after it), not an absent optional field.
      const s = v === null ? undefined : this.string([...path, k], v, { rule: rules.value });
      if (v === null)
        this.report([...path, k], `must be a string (got nothing; write "" for an empty value)`);
      if (s === undefined) ok = false;
      else out[k] = s;
    }
    return ok ? out : undefined;
  }

  /** True when there is no value; reports it when the value is required. Null counts as absent. */
  private absent(path: FieldPath, value: unknown, options: Presence): boolean {
    if (value !== undefined && value !== null) return false;
    // A list entry cannot be missing, only empty (`- ` with nothing after it).
    if (options.required)
      this.report(path, typeof path.at(-1) === "number" ? "must not be empty" : "is required");
    return true;
  }
}

/** A copy of `o` without the keys whose value is undefined: clean output objects for deepEqual and storage. */
export function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}
