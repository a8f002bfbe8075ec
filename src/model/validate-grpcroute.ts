// GRPCRoute (Gateway API v1, unchanged): routes gRPC calls to a Service by gRPC service and method
// and by metadata (headers), to weighted Service backends, through header-modifier, mirror and
// FaultInjection (ExtensionRef) filters. Attached to a Service through parentRefs as in GAMMA, like
// HTTPRoute, whose parentRef, backendRef, header-match and filter checks it reuses.
//
// weft extension: a rule may carry HTTPRoute's `timeouts` stanza and a `retry` stanza whose `on`
// lists gRPC statuses (validate-grpcroute-retry.ts). Gateway API v1's GRPCRoute has neither field;
// docs/resources.md says what that means on Kubernetes.

import type { Checker, StringRule } from "./checker.ts";
import { compact } from "./checker.ts";
import type { FieldPath } from "./field-path.ts";
import { allOf, maxLength, regularExpression, sectionName } from "./names.ts";
import { HEADER_MATCH_TYPES, HTTPROUTE_LIMITS } from "./resources.ts";
import type {
  BackendRef,
  GRPCMethodMatch,
  GRPCRouteFilter,
  GRPCRouteFilterType,
  GRPCRouteMatch,
  GRPCRouteRule,
  GRPCRouteSpec,
  Metadata,
} from "./resources.ts";
import { validateGrpcRetry } from "./validate-grpcroute-retry.ts";
import { validateFilters } from "./validate-httproute-filters.ts";
import { valueMatches } from "./validate-httproute-match.ts";
import { validateTimeouts } from "./validate-httproute-retry.ts";
import { validateBackendRef, validateRouteParts } from "./validate-httproute.ts";

export const GRPCROUTE_SPEC_FIELDS = ["parentRefs", "hostnames", "rules"] as const;
export const GRPC_RULE_FIELDS = ["name", "matches", "filters", "backendRefs", "timeouts", "retry"] as const;
export const GRPC_MATCH_FIELDS = ["method", "headers"] as const;
export const GRPC_METHOD_MATCH_FIELDS = ["type", "service", "method"] as const;
export const GRPC_FILTER_TYPES = [
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
  "RequestMirror",
  "ExtensionRef",
] as const satisfies readonly GRPCRouteFilterType[];

const UNSUPPORTED_RULE_FIELDS = ["sessionPersistence"];

/** The Gateway API's CEL rules for Exact method matches: a (dotted) protobuf service name and a method name. */
const exactService: StringRule = allOf(maxLength(1024), (s) =>
  /^\.?[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$/.test(s)
    ? undefined
    : "must be a fully qualified gRPC service name such as shop.v1.Catalog",
);
const exactMethod: StringRule = allOf(maxLength(1024), (s) =>
  /^[A-Za-z_][A-Za-z_0-9]*$/.test(s) ? undefined : "must be a gRPC method name such as GetItem",
);
const regexRule: StringRule = allOf(maxLength(1024), regularExpression);

export function validateGRPCRouteSpec(
  c: Checker,
  value: unknown,
  meta: Metadata | undefined,
): GRPCRouteSpec | undefined {
  const path = ["spec"];
  const spec = c.mapping(path, value, GRPCROUTE_SPEC_FIELDS, { required: true });
  if (!spec) return undefined;

  return validateRouteParts(c, path, spec, meta, validateRule);
}

function validateRule(c: Checker, path: FieldPath, value: unknown): GRPCRouteRule | undefined {
  const raw = c.mapping(path, value, GRPC_RULE_FIELDS, {
    required: true,
    unsupported: UNSUPPORTED_RULE_FIELDS,
  });
  if (!raw) return undefined;
  const name = c.string([...path, "name"], raw.name, { rule: sectionName });
  const matchesRaw = c.list([...path, "matches"], raw.matches, { max: HTTPROUTE_LIMITS.matchesPerRule });
  const matches = matchesRaw?.map((m, i) => validateMatch(c, [...path, "matches", i], m));
  const backendsRaw = c.list([...path, "backendRefs"], raw.backendRefs, {
    max: HTTPROUTE_LIMITS.backendRefsPerRule,
  });
  const backendRefs = backendsRaw?.map((b, i) => validateBackendRef(c, [...path, "backendRefs", i], b));
  const filters = validateFilters(
    c,
    {
      path,
      matches: undefined,
      hasBackendRefs: (backendsRaw?.length ?? 0) > 0,
      only: { kind: "GRPCRoute", types: GRPC_FILTER_TYPES },
    },
    raw.filters,
  ) as GRPCRouteFilter[] | undefined;
  const timeouts = validateTimeouts(c, [...path, "timeouts"], raw.timeouts);
  const retry = validateGrpcRetry(c, [...path, "retry"], raw.retry);
  return compact({
    name,
    matches: matches?.filter((m) => m !== undefined),
    filters,
    backendRefs: backendRefs?.filter((b): b is BackendRef => b !== undefined),
    timeouts,
    retry,
  });
}

function validateMatch(c: Checker, path: FieldPath, value: unknown): GRPCRouteMatch | undefined {
  const raw = c.mapping(path, value, GRPC_MATCH_FIELDS, { required: true });
  if (!raw) return undefined;
  const method = validateMethodMatch(c, [...path, "method"], raw.method);
  const headers = valueMatches(
    c,
    [...path, "headers"],
    raw.headers,
    HTTPROUTE_LIMITS.headersPerMatch,
    "header",
    true,
  );
  return compact({ method, headers });
}

function validateMethodMatch(c: Checker, path: FieldPath, value: unknown): GRPCMethodMatch | undefined {
  const raw = c.mapping(path, value, GRPC_METHOD_MATCH_FIELDS);
  if (!raw) return undefined;
  const type = raw.type == null ? "Exact" : c.oneOf([...path, "type"], raw.type, HEADER_MATCH_TYPES);
  // As the Gateway API's CEL rule: a method match that names neither matches nothing useful.
  if (raw.service == null && raw.method == null) {
    c.report(path, "must set service, method or both (omit method to match every call)");
    return undefined;
  }
  if (!type) return undefined;
  const exact = type === "Exact";
  const service = c.string([...path, "service"], raw.service, { rule: exact ? exactService : regexRule });
  const method = c.string([...path, "method"], raw.method, { rule: exact ? exactMethod : regexRule });
  if ((raw.service != null && service === undefined) || (raw.method != null && method === undefined))
    return undefined;
  return compact({ type, service, method });
}
