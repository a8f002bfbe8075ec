// TrafficPolicy (weft.dev/v1alpha1): how callers balance, protect and retry against one Service
// (outbound side: load balancer, locality, connection pool, outlier detection, slow start, retry
// budget) and how each instance of that Service guards itself (inbound side: rate limit, health check).
//
// The shape follows Gateway API policy attachment: a `targetRef` names the Service. What is stored is
// what the user wrote; defaults (src/model/traffic-defaults.ts) are applied when compiling.

import type { Checker, StringRule } from "./checker.ts";
import { compact } from "./checker.ts";
import type { FieldPath } from "./field-path.ts";
import { allOf, dnsLabel, headerName, maxLength } from "./names.ts";
import type { Metadata, PolicyTargetRef, TrafficPolicySpec } from "./resources.ts";
import {
  HASH_BALANCERS,
  LOAD_BALANCER_TYPES,
  TRAFFIC_POLICY_DEFAULTS,
  TRAFFIC_POLICY_LIMITS,
} from "./traffic-defaults.ts";
import { coreGroup } from "./validate-refs.ts";
import {
  booleanField,
  durationField,
  exactlyOne,
  ms,
  numberField,
  percentField,
  reportDuplicates,
} from "./validate-values.ts";

export const TRAFFIC_POLICY_SPEC_FIELDS = [
  "targetRef",
  "loadBalancer",
  "locality",
  "connectionPool",
  "outlierDetection",
  "slowStart",
  "retryBudget",
  "healthCheck",
  "rateLimit",
] as const;
export const TARGET_REF_FIELDS = ["group", "kind", "name"] as const;
export const LOAD_BALANCER_FIELDS = ["type", "hash", "tableSize"] as const;
export const HASH_FIELDS = ["header", "cookie", "sourceAddress"] as const;
export const LOCALITY_FIELDS = ["enabled", "minHealthyPercent"] as const;
export const CONNECTION_POOL_FIELDS = [
  "maxConnections",
  "maxPendingRequests",
  "maxRequests",
  "maxRetries",
] as const;
export const OUTLIER_DETECTION_FIELDS = [
  "consecutiveFailures",
  "consecutiveGatewayErrors",
  "baseEjectionTime",
  "maxEjectionTime",
  "maxEjectionPercent",
] as const;
export const RETRY_BUDGET_FIELDS = ["percent", "minRetriesPerSecond"] as const;
export const HEALTH_CHECK_FIELDS = [
  "http",
  "tcp",
  "interval",
  "timeout",
  "healthyThreshold",
  "unhealthyThreshold",
] as const;
export const HTTP_HEALTH_CHECK_FIELDS = ["path", "expectedStatuses"] as const;
export const RATE_LIMIT_FIELDS = ["requestsPerSecond", "burst", "perSource"] as const;

const targetKind: StringRule = (s) =>
  s === "Service" ? undefined : 'must be "Service": a TrafficPolicy shapes the traffic of one Service';

/** Cookie names are HTTP tokens (RFC 6265), the same characters as header names. */
const cookieName: StringRule = allOf(maxLength(256), (s) =>
  headerName(s) === undefined ? undefined : "must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)",
);

const healthPath: StringRule = allOf(maxLength(1024), (s) =>
  s.startsWith("/") ? undefined : "must start with '/'",
);

export function validateTrafficPolicySpec(
  c: Checker,
  value: unknown,
  _meta: Metadata | undefined,
): TrafficPolicySpec | undefined {
  const path = ["spec"];
  const spec = c.mapping(path, value, TRAFFIC_POLICY_SPEC_FIELDS, { required: true });
  if (!spec) return undefined;
  const targetRef = validateTargetRef(c, [...path, "targetRef"], spec.targetRef);
  const out = compact({
    targetRef,
    loadBalancer: validateLoadBalancer(c, [...path, "loadBalancer"], spec.loadBalancer),
    locality: validateLocality(c, [...path, "locality"], spec.locality),
    connectionPool: validateConnectionPool(c, [...path, "connectionPool"], spec.connectionPool),
    outlierDetection: validateOutlierDetection(c, [...path, "outlierDetection"], spec.outlierDetection),
    slowStart: durationField(c, [...path, "slowStart"], spec.slowStart),
    retryBudget: validateRetryBudget(c, [...path, "retryBudget"], spec.retryBudget),
    healthCheck: validateHealthCheck(c, [...path, "healthCheck"], spec.healthCheck),
    rateLimit: validateRateLimit(c, [...path, "rateLimit"], spec.rateLimit),
  });
  return targetRef ? (out as TrafficPolicySpec) : undefined;
}

function validateTargetRef(c: Checker, path: FieldPath, value: unknown): PolicyTargetRef | undefined {
  const raw = c.mapping(path, value, TARGET_REF_FIELDS, { required: true });
  if (!raw) return undefined;
  c.string([...path, "group"], raw.group, { rule: coreGroup });
  // Required, as in the Gateway API's policy attachment, so the YAML says what it targets.
  const kind = c.string([...path, "kind"], raw.kind, { required: true, rule: targetKind });
  const name = c.string([...path, "name"], raw.name, { required: true, rule: dnsLabel });
  if (kind === undefined || name === undefined) return undefined;
  return { group: "", kind: "Service", name };
}

/** A positive integer count (connections, thresholds). */
function count(c: Checker, path: FieldPath, value: unknown, required = false): number | undefined {
  return c.integer(path, value, { required, min: 1, max: TRAFFIC_POLICY_LIMITS.count });
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

type LoadBalancer = NonNullable<TrafficPolicySpec["loadBalancer"]>;

function validateLoadBalancer(c: Checker, path: FieldPath, value: unknown): LoadBalancer | undefined {
  const raw = c.mapping(path, value, LOAD_BALANCER_FIELDS);
  if (!raw) return undefined;
  const type = c.oneOf([...path, "type"], raw.type, LOAD_BALANCER_TYPES);
  // Judge hash and tableSize against the effective type; an invalid type was reported already, and
  // judging the rest against a guess would only add noise.
  const effective = raw.type == null ? TRAFFIC_POLICY_DEFAULTS.loadBalancerType : type;
  const hashing = effective !== undefined && HASH_BALANCERS.includes(effective);

  let hash: LoadBalancer["hash"];
  if (effective !== undefined && !hashing) {
    for (const field of ["hash", "tableSize"] as const) {
      if (raw[field] != null)
        c.report(
          [...path, field],
          `is only for type RingHash or Maglev (consistent hashing); type ${effective} does not hash`,
          { key: true },
        );
    }
  } else if (hashing) {
    if (raw.hash == null)
      c.report(
        [...path, "hash"],
        `is required for type ${effective}: say what to hash (header, cookie or sourceAddress)`,
      );
    const rawHash = c.mapping([...path, "hash"], raw.hash, HASH_FIELDS);
    if (rawHash) {
      // `sourceAddress: false` selects nothing, so it does not count as the one choice.
      const chosen = {
        ...rawHash,
        sourceAddress: rawHash.sourceAddress === false ? undefined : rawHash.sourceAddress,
      };
      exactlyOne(c, [...path, "hash"], chosen, HASH_FIELDS);
      const header = c.string([...path, "hash", "header"], rawHash.header, { rule: headerName });
      const cookie = c.string([...path, "hash", "cookie"], rawHash.cookie, { rule: cookieName });
      const sourceAddress = booleanField(c, [...path, "hash", "sourceAddress"], rawHash.sourceAddress);
      hash = compact({ header, cookie, sourceAddress });
    }
    const tableSize = c.integer([...path, "tableSize"], raw.tableSize, {
      min: 1,
      max: TRAFFIC_POLICY_LIMITS.tableSize,
    });
    // Maglev's lookup table is filled by stepping through it with per-endpoint strides; only a prime
    // size guarantees every stride visits every slot.
    if (effective === "Maglev" && tableSize !== undefined && !isPrime(tableSize)) {
      c.report(
        [...path, "tableSize"],
        `must be a prime number for Maglev, e.g. ${TRAFFIC_POLICY_DEFAULTS.maglevTableSize} (got ${tableSize})`,
      );
    }
    return compact({ type, hash, tableSize });
  }
  return compact({ type, hash });
}

type Locality = NonNullable<TrafficPolicySpec["locality"]>;

function validateLocality(c: Checker, path: FieldPath, value: unknown): Locality | undefined {
  const raw = c.mapping(path, value, LOCALITY_FIELDS);
  if (!raw) return undefined;
  return compact({
    enabled: booleanField(c, [...path, "enabled"], raw.enabled),
    minHealthyPercent: percentField(c, [...path, "minHealthyPercent"], raw.minHealthyPercent),
  });
}

type ConnectionPool = NonNullable<TrafficPolicySpec["connectionPool"]>;

function validateConnectionPool(c: Checker, path: FieldPath, value: unknown): ConnectionPool | undefined {
  const raw = c.mapping(path, value, CONNECTION_POOL_FIELDS);
  if (!raw) return undefined;
  return compact({
    maxConnections: count(c, [...path, "maxConnections"], raw.maxConnections),
    maxPendingRequests: count(c, [...path, "maxPendingRequests"], raw.maxPendingRequests),
    maxRequests: count(c, [...path, "maxRequests"], raw.maxRequests),
    maxRetries: count(c, [...path, "maxRetries"], raw.maxRetries),
  });
}

type OutlierDetection = NonNullable<TrafficPolicySpec["outlierDetection"]>;

function validateOutlierDetection(c: Checker, path: FieldPath, value: unknown): OutlierDetection | undefined {
  const raw = c.mapping(path, value, OUTLIER_DETECTION_FIELDS);
  if (!raw) return undefined;
  const baseEjectionTime = durationField(c, [...path, "baseEjectionTime"], raw.baseEjectionTime, {
    positive: true,
  });
  const maxEjectionTime = durationField(c, [...path, "maxEjectionTime"], raw.maxEjectionTime, {
    positive: true,
  });
  // Compare effective values: a maxEjectionTime below the default base would cap every ejection at
  // less than its first term, which is certainly not what was meant.
  const baseMs = ms(baseEjectionTime) ?? TRAFFIC_POLICY_DEFAULTS.baseEjectionMs;
  const maxMs = ms(maxEjectionTime);
  const baseKnown = raw.baseEjectionTime == null || baseEjectionTime !== undefined;
  if (baseKnown && maxMs !== undefined && maxMs < baseMs) {
    const what =
      baseEjectionTime === undefined
        ? `the default baseEjectionTime (30s)`
        : `baseEjectionTime (${baseEjectionTime})`;
    c.report(
      [...path, "maxEjectionTime"],
      `must be at least ${what} (got ${JSON.stringify(maxEjectionTime)})`,
    );
  }
  return compact({
    consecutiveFailures: count(c, [...path, "consecutiveFailures"], raw.consecutiveFailures),
    // 0 turns this trigger off, so unlike the other counts it may be 0.
    consecutiveGatewayErrors: c.integer([...path, "consecutiveGatewayErrors"], raw.consecutiveGatewayErrors, {
      min: 0,
      max: TRAFFIC_POLICY_LIMITS.count,
    }),
    baseEjectionTime,
    maxEjectionTime,
    maxEjectionPercent: percentField(c, [...path, "maxEjectionPercent"], raw.maxEjectionPercent),
  });
}

type RetryBudget = NonNullable<TrafficPolicySpec["retryBudget"]>;

function validateRetryBudget(c: Checker, path: FieldPath, value: unknown): RetryBudget | undefined {
  const raw = c.mapping(path, value, RETRY_BUDGET_FIELDS);
  if (!raw) return undefined;
  return compact({
    percent: percentField(c, [...path, "percent"], raw.percent),
    // 0 is allowed: a budget of only `percent`, with no floor for low-traffic services.
    minRetriesPerSecond: c.integer([...path, "minRetriesPerSecond"], raw.minRetriesPerSecond, {
      min: 0,
      max: TRAFFIC_POLICY_LIMITS.count,
    }),
  });
}

type HealthCheckSpec = NonNullable<TrafficPolicySpec["healthCheck"]>;

function validateHealthCheck(c: Checker, path: FieldPath, value: unknown): HealthCheckSpec | undefined {
  const raw = c.mapping(path, value, HEALTH_CHECK_FIELDS);
  if (!raw) return undefined;
  exactlyOne(c, path, raw, ["http", "tcp"]);
  let http: HealthCheckSpec["http"];
  const rawHttp = c.mapping([...path, "http"], raw.http, HTTP_HEALTH_CHECK_FIELDS);
  if (rawHttp) {
    const p = c.string([...path, "http", "path"], rawHttp.path, { rule: healthPath });
    const statusesRaw = c.list([...path, "http", "expectedStatuses"], rawHttp.expectedStatuses, {
      max: TRAFFIC_POLICY_LIMITS.expectedStatuses,
    });
    const statuses = statusesRaw?.map((s, i) =>
      c.integer([...path, "http", "expectedStatuses", i], s, { required: true, min: 100, max: 599 }),
    );
    if (statuses) reportDuplicates(c, [...path, "http", "expectedStatuses"], statuses);
    http = compact({ path: p, expectedStatuses: statuses?.filter((s) => s !== undefined) });
  }
  // A TCP check has no settings: `tcp: {}` says "connect, and that is all".
  let tcp: HealthCheckSpec["tcp"];
  const rawTcp = c.mapping([...path, "tcp"], raw.tcp, Object.keys(raw.tcp ?? {}));
  if (rawTcp && Object.keys(rawTcp).length > 0)
    c.report([...path, "tcp"], "must be empty ({}): a TCP check only opens a connection to the app's port");
  else if (rawTcp) tcp = {};
  const interval = durationField(c, [...path, "interval"], raw.interval, { positive: true });
  const timeout = durationField(c, [...path, "timeout"], raw.timeout, { positive: true });
  // Only when both are written: with defaults filled in, the compiler clamps the timeout instead, so
  // that `interval: 500ms` alone is not rejected for clashing with a default the user never saw.
  const intervalMs = ms(interval);
  const timeoutMs = ms(timeout);
  if (intervalMs !== undefined && timeoutMs !== undefined && timeoutMs > intervalMs) {
    c.report(
      [...path, "timeout"],
      `must not be longer than interval (${interval}): a check must end before the next one starts (got ${JSON.stringify(timeout)})`,
    );
  }
  return compact({
    http,
    tcp,
    interval,
    timeout,
    healthyThreshold: count(c, [...path, "healthyThreshold"], raw.healthyThreshold),
    unhealthyThreshold: count(c, [...path, "unhealthyThreshold"], raw.unhealthyThreshold),
  });
}

type RateLimitSpec = NonNullable<TrafficPolicySpec["rateLimit"]>;

function validateRateLimit(c: Checker, path: FieldPath, value: unknown): RateLimitSpec | undefined {
  const raw = c.mapping(path, value, RATE_LIMIT_FIELDS);
  if (!raw) return undefined;
  // Fractions are allowed (0.5 = one request every two seconds); 0 would refuse everything, which is
  // what deleting the Service is for.
  const requestsPerSecond = numberField(c, [...path, "requestsPerSecond"], raw.requestsPerSecond, {
    required: true,
    min: 0,
    max: 1e9,
    exclusiveMin: true,
  });
  const burst = count(c, [...path, "burst"], raw.burst);
  const perSource = booleanField(c, [...path, "perSource"], raw.perSource);
  if (requestsPerSecond === undefined) return undefined;
  return compact({ requestsPerSecond, burst, perSource });
}
