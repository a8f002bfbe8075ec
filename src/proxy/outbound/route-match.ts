// Route matching, compiled once per config change into predicates (Gateway API HTTPRoute semantics):
// a route matches when ANY of its matches does; a match holds when ALL its conditions do; a route
// without matches, or a match without conditions, accepts every request.
//   path  Exact: equal; PathPrefix: whole segments ("/foo" matches /foo and /foo/bar, not /foobar;
//         a trailing slash in the prefix is ignored); RegularExpression: the whole path must match.
//   headers: names case-insensitive, values exact or whole-value regex; repeated headers are joined with ",".
//   queryParams: first value of the parameter, exact or whole-value regex.
//   method: exact.
// Paths are compared as received (no percent-decoding or dot-segment normalisation).

import type { RouteMatch } from "../../model/snapshot.ts";

/** What a matcher may look at. The outbound exchange implements it, so matching allocates nothing. */
export interface RequestView {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  header(name: string): string | undefined;
  queryParam(name: string): string | null;
}

type Condition = (r: RequestView) => boolean;

/** `undefined` means "matches every request" (the fast path for catch-all routes). */
export type RouteMatcher = ((r: RequestView) => boolean) | undefined;

function wholeRegex(source: string): RegExp {
  return new RegExp(`^(?:${source})$`);
}

function pathCondition(type: string, value: string): Condition | undefined {
  switch (type) {
    case "Exact":
      return (r) => r.path === value;
    case "RegularExpression": {
      const re = wholeRegex(value);
      return (r) => re.test(r.path);
    }
    case "PathPrefix":
    default: {
      const prefix = value.replace(/\/+$/, "");
      if (prefix === "") return undefined; // "/" matches everything
      const withSlash = `${prefix}/`;
      return (r) => r.path === prefix || r.path.startsWith(withSlash);
    }
  }
}

function valueCondition(
  type: "Exact" | "RegularExpression",
  value: string,
  get: (r: RequestView) => string | null | undefined,
): Condition {
  if (type === "RegularExpression") {
    const re = wholeRegex(value);
    return (r) => {
      const v = get(r);
      return v != null && re.test(v);
    };
  }
  return (r) => get(r) === value;
}

function compileOne(m: RouteMatch): Condition[] {
  const conditions: Condition[] = [];
  if (m.path) {
    const c = pathCondition(m.path.type, m.path.value);
    if (c) conditions.push(c);
  }
  if (m.method) {
    const method = m.method;
    conditions.push((r) => r.method === method);
  }
  for (const h of m.headers ?? []) {
    const name = h.name.toLowerCase();
    conditions.push(valueCondition(h.type, h.value, (r) => r.header(name)));
  }
  for (const q of m.queryParams ?? []) {
    const name = q.name;
    conditions.push(valueCondition(q.type, q.value, (r) => r.queryParam(name)));
  }
  return conditions;
}

function allOf(cs: Condition[]): Condition {
  if (cs.length === 1) return cs[0];
  return (r) => {
    for (let i = 0; i < cs.length; i++) if (!cs[i](r)) return false;
    return true;
  };
}

/** Compiles a route's matches. Throws on an invalid regular expression (the agent checks snapshots first). */
export function compileRouteMatches(matches: readonly RouteMatch[]): RouteMatcher {
  if (matches.length === 0) return undefined;
  const alternatives: Condition[] = [];
  for (const m of matches) {
    const cs = compileOne(m);
    if (cs.length === 0) return undefined; // an empty match accepts everything
    alternatives.push(allOf(cs));
  }
  if (alternatives.length === 1) return alternatives[0];
  return (r) => {
    for (let i = 0; i < alternatives.length; i++) if (alternatives[i](r)) return true;
    return false;
  };
}
