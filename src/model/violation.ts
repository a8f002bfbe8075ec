// A violation: one thing wrong with user input, located precisely enough that an editor can jump to it.
// Validation never throws on bad input; it returns every violation it finds (kuma-style), and the
// config API rejects the whole apply when there is at least one.

/** 1-based line and column, as editors and compilers print them. */
export interface Position {
  line: number;
  column: number;
}

export interface Violation {
  file: string;
  line: number;
  column: number;
  /** Field path inside the resource, e.g. `spec.rules[0].backendRefs[1].weight`; "" for the whole document. */
  path: string;
  /** What was expected, and what was found: "must be an integer between 0 and 1000000 (got -1)". */
  message: string;
  /** Kind and name of the resource, when the document got far enough to have them. */
  kind?: string;
  name?: string;
}

/** `routes.yaml:12:9: spec.rules[0].backendRefs[1].weight: must be an integer between 0 and 1000000 (got -1)` */
export function formatViolation(v: Violation): string {
  const where = `${v.file}:${v.line}:${v.column}`;
  return v.path ? `${where}: ${v.path}: ${v.message}` : `${where}: ${v.message}`;
}

/** Several violations, one per line, in the order a reader scans the files. */
export function formatViolations(violations: readonly Violation[]): string {
  return [...violations].sort(compareViolations).map(formatViolation).join("\n");
}

/** Orders by file, then position, then path: the order a reader scans a file. */
export function compareViolations(a: Violation, b: Violation): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.line !== b.line) return a.line - b.line;
  if (a.column !== b.column) return a.column - b.column;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}
