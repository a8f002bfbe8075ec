// HTTPRoute rule matches: path, headers, query parameters, method (Gateway API HTTPRouteMatch).

import type { Checker, StringRule } from "./checker.ts";
import { compact } from "./checker.ts";
import type { FieldPath } from "./field-path.ts";
import { formatPath } from "./field-path.ts";
import { allOf, headerName, maxLength, regularExpression } from "./names.ts";
import {
  DEFAULT_PATH_MATCH_TYPE,
  HEADER_MATCH_TYPES,
  HTTP_METHODS,
  HTTPROUTE_LIMITS,
  PATH_MATCH_TYPES,
} from "./resources.ts";
import type { HTTPRouteMatch, PathMatchType } from "./resources.ts";

export const MATCH_FIELDS = ["path", "headers", "queryParams", "method"] as const;
export const PATH_FIELDS = ["type", "value"] as const;
export const VALUE_MATCH_FIELDS = ["type", "name", "value"] as const;

type ValueMatch = NonNullable<HTTPRouteMatch["headers"]>[number];

/** The Gateway API's rules for PathPrefix and Exact values: absolute, and already normalised. */
const literalPath: StringRule = (s) => {
  if (!s.startsWith("/")) return "must start with '/'";
  for (const bad of ["//", "/./", "/../", "%2f", "%2F", "#"]) {
    if (s.includes(bad)) return `must not contain ${JSON.stringify(bad)}`;
  }
  if (s.endsWith("/..") || s.endsWith("/.")) return "must not end with '/.' or '/..'";
  return undefined;
};

const PATH_RULES: Record<PathMatchType, StringRule> = {
  PathPrefix: allOf(maxLength(1024), literalPath),
  Exact: allOf(maxLength(1024), literalPath),
  RegularExpression: allOf(maxLength(1024), regularExpression),
};

export function validateMatch(c: Checker, path: FieldPath, value: unknown): HTTPRouteMatch | undefined {
  // `- {}` matches every request; a bare `-` is reported (it is more often a mistake than intent).
  const raw = c.mapping(path, value, MATCH_FIELDS, { required: true });
  if (!raw) return undefined;

  let pathMatch: HTTPRouteMatch["path"];
  const rawPath = c.mapping([...path, "path"], raw.path, PATH_FIELDS);
  if (rawPath) {
    // Defaults as in the Gateway API: type PathPrefix, value "/". An invalid type skips the value's
    // type-specific rule, so one mistake is reported once.
    const type =
      rawPath.type == null
        ? DEFAULT_PATH_MATCH_TYPE
        : c.oneOf([...path, "path", "type"], rawPath.type, PATH_MATCH_TYPES);
    const rule = type ? PATH_RULES[type] : undefined;
    const v = rawPath.value == null ? "/" : c.string([...path, "path", "value"], rawPath.value, { rule });
    if (type && v !== undefined) pathMatch = { type, value: v };
  }

  const headers = valueMatches(
    c,
    [...path, "headers"],
    raw.headers,
    HTTPROUTE_LIMITS.headersPerMatch,
    "header",
    true,
  );
  const queryParams = valueMatches(
    c,
    [...path, "queryParams"],
    raw.queryParams,
    HTTPROUTE_LIMITS.queryParamsPerMatch,
    "query parameter",
    false,
  );
  const method = c.oneOf([...path, "method"], raw.method, HTTP_METHODS);
  return compact({ path: pathMatch, headers, queryParams, method });
}

/** headers and queryParams share a shape: {type (default Exact), name, value}, names unique. */
export function valueMatches(
  c: Checker,
  path: FieldPath,
  value: unknown,
  max: number,
  what: string,
  caseInsensitive: boolean,
): ValueMatch[] | undefined {
  const list = c.list(path, value, { max });
  if (!list) return undefined;
  const seen = new Map<string, number>();
  const out: ValueMatch[] = [];
  list.forEach((item, i) => {
    const p = [...path, i];
    const raw = c.mapping(p, item, VALUE_MATCH_FIELDS, { required: true });
    if (!raw) return;
    const type = c.oneOf([...p, "type"], raw.type, HEADER_MATCH_TYPES) ?? "Exact";
    const name = c.string([...p, "name"], raw.name, { required: true, rule: headerName });
    const rule = type === "RegularExpression" ? allOf(maxLength(4096), regularExpression) : maxLength(4096);
    const v = c.string([...p, "value"], raw.value, { required: true, rule });
    if (name !== undefined) {
      const key = caseInsensitive ? name.toLowerCase() : name;
      const first = seen.get(key);
      if (first !== undefined) {
        const note = caseInsensitive ? "; header names are case-insensitive" : "";
        c.report(
          [...p, "name"],
          `duplicate ${what} ${JSON.stringify(name)} (also ${formatPath([...path, first])})${note}`,
        );
      } else seen.set(key, i);
    }
    if (name !== undefined && v !== undefined) out.push({ type, name, value: v });
  });
  return out;
}
