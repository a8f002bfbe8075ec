// HTTPRoute (Gateway API, unchanged): attached to a Service through parentRefs as in the Gateway API's
// mesh support (GAMMA); each rule sends matching requests to weighted Service backends, through its
// filters (validate-httproute-filters.ts), within its timeouts and with its retry policy
// (validate-httproute-retry.ts).

import type { Checker } from "./checker.ts";
import { compact } from "./checker.ts";
import type { FieldPath } from "./field-path.ts";
import { formatPath } from "./field-path.ts";
import { dnsLabel, routeHostname, sectionName } from "./names.ts";
import { DEFAULT_BACKEND_WEIGHT, HTTPROUTE_LIMITS, MAX_BACKEND_WEIGHT } from "./resources.ts";
import type {
  BackendRef,
  HTTPRouteFilter,
  HTTPRouteMatch,
  HTTPRouteRule,
  HTTPRouteSpec,
  Metadata,
  ParentRef,
} from "./resources.ts";
import { FILTER_TYPES, validateFilters } from "./validate-httproute-filters.ts";
import { validateMatch } from "./validate-httproute-match.ts";
import { validateRetry, validateTimeouts } from "./validate-httproute-retry.ts";
import { checkBackendObjectFields, coreGroup, serviceKind } from "./validate-refs.ts";

export const HTTPROUTE_SPEC_FIELDS = ["parentRefs", "hostnames", "rules"] as const;
export const PARENT_REF_FIELDS = ["group", "kind", "name", "namespace", "port", "sectionName"] as const;
export const RULE_FIELDS = ["name", "matches", "filters", "backendRefs", "timeouts", "retry"] as const;
export const BACKEND_REF_FIELDS = [
  "group",
  "kind",
  "name",
  "namespace",
  "port",
  "weight",
  "filters",
] as const;
/** The filter types a backendRef may carry (the Gateway API allows more; weft applies these per backend). */
export const BACKEND_FILTER_TYPES = ["RequestHeaderModifier", "ResponseHeaderModifier"] as const;

/** Gateway API fields weft does not implement yet: reported as such, not as typos. */
const UNSUPPORTED_PARENT_REF_FIELDS: string[] = [];
const UNSUPPORTED_RULE_FIELDS = ["sessionPersistence"];

export function validateHTTPRouteSpec(
  c: Checker,
  value: unknown,
  meta: Metadata | undefined,
): HTTPRouteSpec | undefined {
  const path = ["spec"];
  const spec = c.mapping(path, value, HTTPROUTE_SPEC_FIELDS, { required: true });
  if (!spec) return undefined;

  return validateRouteParts(c, path, spec, meta, validateRule);
}

/**
 * What HTTPRoute and GRPCRoute specs share: parentRefs (no duplicates), hostnames, and rules (checked by
 * the kind's own `validateRule`; no duplicate rule names).
 */
export function validateRouteParts<R extends { name?: string }>(
  c: Checker,
  path: FieldPath,
  spec: Record<string, unknown>,
  meta: Metadata | undefined,
  validateRule: (c: Checker, path: FieldPath, value: unknown) => R | undefined,
): { parentRefs: ParentRef[]; hostnames?: string[]; rules?: R[] } {
  const parentRefs: ParentRef[] = [];
  const seenParents = new Map<string, number>();
  const rawParents = c.list([...path, "parentRefs"], spec.parentRefs, {
    required: true,
    min: 1,
    max: HTTPROUTE_LIMITS.parentRefs,
  });
  rawParents?.forEach((raw, i) => {
    const ref = validateParentRef(c, [...path, "parentRefs", i], raw);
    if (!ref) return;
    parentRefs.push(ref);
    const key = `${ref.namespace ?? meta?.namespace}/${ref.name}:${ref.port ?? "*"}:${ref.sectionName ?? "*"}`;
    const first = seenParents.get(key);
    if (first === undefined) seenParents.set(key, i);
    else
      c.report(
        [...path, "parentRefs", i],
        `duplicate parentRef (also ${formatPath([...path, "parentRefs", first])})`,
      );
  });

  const hostnamesRaw = c.list([...path, "hostnames"], spec.hostnames, { max: HTTPROUTE_LIMITS.hostnames });
  const hostnames = hostnamesRaw?.map((h, i) =>
    c.string([...path, "hostnames", i], h, { required: true, rule: routeHostname }),
  );

  const rulesRaw = c.list([...path, "rules"], spec.rules, { max: HTTPROUTE_LIMITS.rules });
  const ruleNames = new Map<string, number>();
  const rules = rulesRaw?.map((raw, i) => {
    const rule = validateRule(c, [...path, "rules", i], raw);
    if (rule?.name !== undefined) {
      const first = ruleNames.get(rule.name);
      if (first === undefined) ruleNames.set(rule.name, i);
      else
        c.report(
          [...path, "rules", i, "name"],
          `duplicate rule name (also ${formatPath([...path, "rules", first])})`,
        );
    }
    return rule;
  });

  return compact({
    parentRefs,
    hostnames: hostnames?.filter((h) => h !== undefined),
    rules: rules?.filter((r) => r !== undefined),
  });
}

export function validateParentRef(c: Checker, path: FieldPath, value: unknown): ParentRef | undefined {
  const raw = c.mapping(path, value, PARENT_REF_FIELDS, {
    required: true,
    unsupported: UNSUPPORTED_PARENT_REF_FIELDS,
  });
  if (!raw) return undefined;
  c.string([...path, "group"], raw.group, { rule: coreGroup });
  // The Gateway API's default parent kind is Gateway, which weft does not have: kind must be explicit,
  // so the same YAML means the same thing on Kubernetes.
  if (raw.kind == null) {
    c.report(
      [...path, "kind"],
      "is required: set kind: Service (weft attaches routes to Services; the Gateway API default, Gateway, is not supported)",
    );
  }
  const kind = c.string([...path, "kind"], raw.kind, { rule: serviceKind });
  const name = c.string([...path, "name"], raw.name, { required: true, rule: dnsLabel });
  const namespace = c.string([...path, "namespace"], raw.namespace, { rule: dnsLabel });
  const port = c.port([...path, "port"], raw.port);
  // GAMMA: a Service port's name (the route then applies to that port only, as with `port`).
  const section = c.string([...path, "sectionName"], raw.sectionName, { rule: sectionName });
  if (kind === undefined || name === undefined) return undefined;
  return compact({ group: "", kind, name, namespace, port, sectionName: section });
}

function validateRule(c: Checker, path: FieldPath, value: unknown): HTTPRouteRule | undefined {
  const raw = c.mapping(path, value, RULE_FIELDS, { required: true, unsupported: UNSUPPORTED_RULE_FIELDS });
  if (!raw) return undefined;
  const name = c.string([...path, "name"], raw.name, { rule: sectionName });
  const matchesRaw = c.list([...path, "matches"], raw.matches, { max: HTTPROUTE_LIMITS.matchesPerRule });
  const matches = matchesRaw?.map((m, i) => validateMatch(c, [...path, "matches", i], m));
  const backendsRaw = c.list([...path, "backendRefs"], raw.backendRefs, {
    max: HTTPROUTE_LIMITS.backendRefsPerRule,
  });
  const backendRefs = backendsRaw?.map((b, i) =>
    validateBackendRef(c, [...path, "backendRefs", i], b, matches),
  );
  // Filters are checked against the rule's matches and backends (ReplacePrefixMatch needs PathPrefix
  // matches; a redirect excludes backends), so they come after both.
  const filters = validateFilters(
    c,
    { path, matches, hasBackendRefs: (backendsRaw?.length ?? 0) > 0 },
    raw.filters,
  );
  const timeouts = validateTimeouts(c, [...path, "timeouts"], raw.timeouts);
  const retry = validateRetry(c, [...path, "retry"], raw.retry);
  return compact({
    name,
    matches: matches?.filter((m) => m !== undefined),
    filters,
    backendRefs: backendRefs?.filter((b) => b !== undefined),
    timeouts,
    retry,
  });
}

export function validateBackendRef(
  c: Checker,
  path: FieldPath,
  value: unknown,
  matches?: (HTTPRouteMatch | undefined)[],
): BackendRef | undefined {
  const raw = c.mapping(path, value, BACKEND_REF_FIELDS, { required: true });
  if (!raw) return undefined;
  const ref = checkBackendObjectFields(c, path, raw);
  const weight =
    c.integer([...path, "weight"], raw.weight, { min: 0, max: MAX_BACKEND_WEIGHT }) ?? DEFAULT_BACKEND_WEIGHT;
  const filters = validateBackendFilters(c, path, raw.filters, matches);
  return ref && compact({ ...ref, weight, filters });
}

/**
 * backendRefs[].filters: the same HTTPRouteFilter schema as a rule's, checked by the same code; weft
 * applies the header modifiers per backend, and reports the other types as not supported yet.
 */
function validateBackendFilters(
  c: Checker,
  path: FieldPath,
  value: unknown,
  matches: (HTTPRouteMatch | undefined)[] | undefined,
): HTTPRouteFilter[] | undefined {
  if (Array.isArray(value)) {
    value.forEach((f, i) => {
      const type = (f as { type?: unknown } | null)?.type;
      if (typeof type !== "string" || (BACKEND_FILTER_TYPES as readonly string[]).includes(type)) return;
      if (!(FILTER_TYPES as readonly string[]).includes(type)) return; // validateFilters names it
      c.report(
        [...path, "filters", i, "type"],
        `filter type ${JSON.stringify(type)} in a backendRef is not supported by weft yet (supported here: ${BACKEND_FILTER_TYPES.join(", ")}; a rule's own filters support every type)`,
      );
    });
  }
  return validateFilters(c, { path, matches, hasBackendRefs: false }, value);
}
