// Manifests → parsed documents that remember where every field came from.
//
// Accepts what users paste from kubectl and kuma: several YAML documents separated by `---`, JSON (a
// subset of YAML), a `kind: List` with `items`, or a top-level list of resources. Syntax errors become
// violations at the position yaml reports; empty documents are skipped. Validation (validate.ts) then
// asks each ParsedResource for the position of any field path it wants to complain about.

import { LineCounter, isScalar, parseAllDocuments } from "yaml";
import type { Document } from "yaml";
import { describeValue } from "./describe.ts";
import { formatPath, parsePath } from "./field-path.ts";
import type { FieldPath } from "./field-path.ts";
import { didYouMean } from "./suggest.ts";
import type { Position, Violation } from "./violation.ts";
import { locate } from "./yaml-locate.ts";
import type { LocateOptions } from "./yaml-locate.ts";

export interface ParsedResource {
  /** The resource as plain data (aliases and merge keys resolved). Not yet validated. */
  resource: Record<string, unknown>;
  file: string;
  /** 0-based index of the YAML document in the file. */
  doc: number;
  /** Index in a `kind: List`'s items or a top-level list; absent for a resource that is a whole document. */
  item?: number;
  /**
   * Line and column of a field path inside this resource (`spec.rules[0].backendRefs[1].weight`), or
   * of its nearest existing ancestor when the field is missing.
   */
  pos(path: string | FieldPath, options?: LocateOptions): Position;
}

export interface ParseResult {
  resources: ParsedResource[];
  errors: Violation[];
}

const LIST_FIELDS = ["apiVersion", "kind", "metadata", "items"];

export function parseManifests(text: string, file: string): ParseResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, merge: true, logLevel: "error" });
  const resources: ParsedResource[] = [];
  const errors: Violation[] = [];
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const fail = (offset: number, path: string, message: string) =>
    errors.push({ file, ...at(offset), path, message });

  if ("empty" in docs) {
    for (const e of [...docs.errors, ...docs.warnings]) fail(e.pos[0], "", `invalid YAML: ${e.message}`);
    return { resources, errors };
  }

  docs.forEach((doc, index) => {
    const problems = [...doc.errors, ...doc.warnings];
    for (const e of problems) fail(e.pos[0], "", `invalid YAML: ${e.message}`);
    if (problems.length || isEmpty(doc)) return;

    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // toJS throws only on alias abuse (exponential expansion); report it like a syntax error.
      fail(doc.range[0], "", `invalid YAML: ${(err as Error).message}`);
      return;
    }
    const make = (resource: Record<string, unknown>, base: FieldPath, item?: number): ParsedResource => ({
      resource,
      file,
      doc: index,
      ...(item === undefined ? {} : { item }),
      pos: (path, options) =>
        at(locate(doc, [...base, ...(typeof path === "string" ? parsePath(path) : path)], options).offset),
    });
    const where = (path: FieldPath, options?: LocateOptions) => locate(doc, path, options).offset;

    const addItems = (items: unknown[], base: FieldPath) =>
      items.forEach((item, i) => {
        if (isRecord(item)) resources.push(make(item, [...base, i], i));
        else fail(where([...base, i]), formatPath([...base, i]), mustBeResource(item));
      });

    if (Array.isArray(value)) {
      addItems(value, []);
    } else if (!isRecord(value)) {
      fail(where([]), "", mustBeResource(value));
    } else if (value.kind === "List") {
      for (const key of Object.keys(value)) {
        if (!LIST_FIELDS.includes(key)) {
          fail(
            where([key], { key: true }),
            key,
            `unknown field ${JSON.stringify(key)} in a List${didYouMean(key, LIST_FIELDS)}`,
          );
        }
      }
      const items = value.items ?? [];
      if (Array.isArray(items)) addItems(items, ["items"]);
      else fail(where(["items"]), "items", `must be a list of resources (got ${describeValue(items)})`);
    } else {
      resources.push(make(value, []));
    }
  });
  return { resources, errors };
}

/** A document with nothing in it: `---` twice in a row, or only comments. */
function isEmpty(doc: Document): boolean {
  const c = doc.contents;
  return c === null || (isScalar(c) && c.value === null);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function mustBeResource(v: unknown): string {
  return `must be a resource: a mapping with apiVersion, kind, metadata and spec (got ${describeValue(v)})`;
}
