// Traffic management, compiled: an HTTPRoute rule's filters, timeouts and retry policy become the
// extra fields of its snapshot routes; a TrafficPolicy becomes its Service's cluster policy and, for
// the proxies of that Service, their inbound rate limit and health check.
//
// Stored resources hold only what users wrote; weft's defaults are applied here (from
// src/model/traffic-defaults.ts and the retry defaults), so the snapshot is always complete and a
// proxy never has to know a default. Every field a route or cluster does not use is left out, so a
// plain route costs nothing per request and existing snapshots are unchanged.

import { compact as omitUndefined } from "../../model/checker.ts";
import { parseGatewayDuration } from "../../model/duration.ts";
import { GRPC_STATUS, HTTP_STATUS_OF_GRPC } from "../../model/grpc-status.ts";
import type {
  FaultInjection,
  HTTPHeaderFilter,
  HTTPPathModifier,
  HTTPRouteFilter,
  HTTPRouteRule,
  TrafficPolicy,
} from "../../model/resources.ts";
import type {
  ClusterPolicy,
  FaultPolicy,
  HealthCheck,
  HeaderModifier,
  Mirror,
  PathModifier,
  RateLimit,
  RetryCondition,
  Route,
  RouteFilters,
} from "../../model/snapshot.ts";
import {
  DEFAULT_FRACTION_DENOMINATOR,
  DEFAULT_REDIRECT_STATUS_CODE,
  FAULT_DEFAULTS,
  HASH_BALANCERS,
  RETRY_DEFAULTS,
  TRAFFIC_POLICY_DEFAULTS as D,
} from "../../model/traffic-defaults.ts";

/** The extra fields of the routes compiled from one rule; shared by every match of the rule. */
export type RuleTraffic = Pick<Route, "filters" | "timeouts" | "retry" | "hedge" | "fault" | "mirrors">;

/** FaultInjections by "namespace/name": what ExtensionRef filters resolve against. */
export type FaultIndex = ReadonlyMap<string, FaultInjection>;

export function faultIndex(faults: readonly FaultInjection[]): FaultIndex {
  return new Map(faults.map((f) => [`${f.metadata.namespace}/${f.metadata.name}`, f]));
}

/**
 * Per the Gateway API, a filter that cannot be resolved must not be skipped silently (that would
 * route requests as if the filter were not there): the rule answers 500 instead. So an ExtensionRef
 * to a FaultInjection that does not exist (yet) aborts every request of the rule.
 */
export const UNRESOLVED_FILTER_FAULT: FaultPolicy = { abort: { status: 500, percent: 100 } };

const ms = (d: string): number => parseGatewayDuration(d) ?? 0;

/**
 * `mirrorTarget` resolves a RequestMirror's backend to its cluster, or undefined to leave the mirror
 * out (an unresolved reference); without it, the backend's "name.namespace" is used as it is.
 */
export function ruleTraffic(
  rule: HTTPRouteRule,
  namespace: string,
  faults: FaultIndex,
  mirrorTarget?: (ref: { name: string; namespace?: string }) => string | undefined,
): RuleTraffic {
  const filters: RouteFilters = {};
  const mirrors: Mirror[] = [];
  let fault: FaultPolicy | undefined;
  for (const f of rule.filters ?? []) {
    if (f.type === "RequestHeaderModifier" && f.requestHeaderModifier)
      filters.requestHeaders = headerModifier(f.requestHeaderModifier);
    else if (f.type === "ResponseHeaderModifier" && f.responseHeaderModifier)
      filters.responseHeaders = headerModifier(f.responseHeaderModifier);
    else if (f.type === "RequestRedirect" && f.requestRedirect) {
      const r = f.requestRedirect;
      filters.redirect = omitUndefined({
        scheme: r.scheme,
        hostname: r.hostname,
        port: r.port,
        path: r.path && pathModifier(r.path),
        statusCode: r.statusCode ?? DEFAULT_REDIRECT_STATUS_CODE,
      });
    } else if (f.type === "URLRewrite" && f.urlRewrite) {
      const r = f.urlRewrite;
      filters.rewrite = omitUndefined({ hostname: r.hostname, path: r.path && pathModifier(r.path) });
    } else if (f.type === "RequestMirror" && f.requestMirror) {
      const m = f.requestMirror;
      const ref = m.backendRef;
      const cluster = mirrorTarget ? mirrorTarget(ref) : `${ref.name}.${ref.namespace ?? namespace}`;
      if (cluster !== undefined) mirrors.push({ cluster, percent: mirrorPercent(m) });
    } else if (f.type === "ExtensionRef" && f.extensionRef) {
      const found = faults.get(`${namespace}/${f.extensionRef.name}`);
      fault = found ? faultPolicy(found) : UNRESOLVED_FILTER_FAULT;
    }
  }

  const out: RuleTraffic = {};
  if (Object.keys(filters).length > 0) out.filters = filters;
  const t = rule.timeouts;
  if (t && (t.request !== undefined || t.backendRequest !== undefined)) {
    out.timeouts = omitUndefined({
      requestMs: t.request === undefined ? undefined : ms(t.request),
      backendRequestMs: t.backendRequest === undefined ? undefined : ms(t.backendRequest),
    });
  }
  const retry = rule.retry;
  if (retry) {
    const baseMs = retry.backoff === undefined ? RETRY_DEFAULTS.backoffMs : ms(retry.backoff);
    out.retry = {
      attempts: retry.attempts ?? RETRY_DEFAULTS.attempts,
      on: retry.on ?? defaultRetryOn(retry.codes),
      codes: retry.codes ?? [],
      backoff: {
        baseMs,
        maxMs:
          retry.maxBackoff === undefined ? baseMs * RETRY_DEFAULTS.maxBackoffFactor : ms(retry.maxBackoff),
      },
      nonIdempotent: retry.nonIdempotent ?? false,
      maxBufferedBodyBytes: RETRY_DEFAULTS.maxBufferedBodyBytes,
    };
    if (retry.hedge)
      out.hedge = {
        delayMs: ms(retry.hedge.delay),
        maxHedges: retry.hedge.maxHedges ?? RETRY_DEFAULTS.maxHedges,
      };
  }
  if (fault) out.fault = fault;
  if (mirrors.length > 0) out.mirrors = mirrors;
  return out;
}

/**
 * Without explicit conditions, a retry stanza retries connection errors — a connection that could not
 * be made (refused, connect timeout, TLS handshake failure), a reset or close before the response,
 * and a per-try timeout (`timeouts.backendRequest`) — as the Gateway API says implementations should,
 * plus gateway errors (502/503/504) unless the user listed `codes`, which says precisely which
 * responses to retry, so gateway errors are not added behind their back. A reset or a timeout may
 * come after the app received the request, so those are retried only for idempotent methods unless
 * the rule sets `nonIdempotent` (the proxy's methodRetriable).
 */
function defaultRetryOn(codes: number[] | undefined): RetryCondition[] {
  const connection: RetryCondition[] = ["connect-failure", "reset", "timeout"];
  return codes ? connection : [...connection, "gateway-error"];
}

/** Header names are lower-cased: HTTP/2 requires it and the proxy compares them without folding. */
export function headerModifier(h: HTTPHeaderFilter): HeaderModifier {
  const lower = (list: { name: string; value: string }[] | undefined) =>
    list?.map((x) => ({ name: x.name.toLowerCase(), value: x.value }));
  return omitUndefined({
    set: lower(h.set),
    add: lower(h.add),
    remove: h.remove?.map((n) => n.toLowerCase()),
  });
}

function pathModifier(p: HTTPPathModifier): PathModifier {
  return p.type === "ReplaceFullPath"
    ? { type: "ReplaceFullPath", value: p.replaceFullPath ?? "/" }
    : { type: "ReplacePrefixMatch", value: p.replacePrefixMatch ?? "/" };
}

/** percent, or the fraction as a percentage (1/1000 → 0.1), or 100 when neither is set (Gateway API). */
function mirrorPercent(m: NonNullable<HTTPRouteFilter["requestMirror"]>): number {
  if (m.percent !== undefined) return m.percent;
  if (m.fraction)
    return (m.fraction.numerator / (m.fraction.denominator ?? DEFAULT_FRACTION_DENOMINATOR)) * 100;
  return 100;
}

function faultPolicy(f: FaultInjection): FaultPolicy {
  const { delay, abort } = f.spec;
  return omitUndefined({
    delay: delay && { ms: ms(delay.fixedDelay), percent: delay.percent ?? FAULT_DEFAULTS.percent },
    abort: abort && faultAbort(abort),
  });
}

/**
 * An abort with a gRPC status answers gRPC callers with that status and others with its HTTP
 * equivalent (UNAVAILABLE → 503), so one FaultInjection serves a route that both kinds of client use.
 */
function faultAbort(a: NonNullable<FaultInjection["spec"]["abort"]>): NonNullable<FaultPolicy["abort"]> {
  const percent = a.percent ?? FAULT_DEFAULTS.percent;
  if (a.grpcStatus !== undefined)
    return { status: HTTP_STATUS_OF_GRPC[a.grpcStatus], percent, grpcStatus: GRPC_STATUS[a.grpcStatus] };
  return { status: a.httpStatus ?? 500, percent };
}

/**
 * The TrafficPolicy that governs each Service, by "name.namespace". When several target one Service,
 * the oldest (by creationTimestamp, then name) wins — the Gateway API's rule for conflicting
 * policies — so applying a second policy never silently changes traffic already shaped by the first.
 */
export function policyIndex(policies: readonly TrafficPolicy[]): Map<string, TrafficPolicy> {
  const sorted = [...policies].sort(
    (a, b) =>
      (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  const out = new Map<string, TrafficPolicy>();
  for (const p of sorted) {
    const key = `${p.spec.targetRef.name}.${p.metadata.namespace}`;
    if (!out.has(key)) out.set(key, p);
  }
  return out;
}

/** The outbound half of a TrafficPolicy; undefined when it sets nothing callers use. */
export function clusterPolicy(tp: TrafficPolicy): ClusterPolicy | undefined {
  const s = tp.spec;
  const policy: ClusterPolicy = {};
  if (s.loadBalancer) {
    const type = s.loadBalancer.type ?? D.loadBalancerType;
    const hashing = HASH_BALANCERS.includes(type);
    policy.loadBalancer = omitUndefined({
      type,
      hashOn: hashing ? s.loadBalancer.hash : undefined,
      tableSize: hashing
        ? (s.loadBalancer.tableSize ?? (type === "Maglev" ? D.maglevTableSize : D.ringHashTableSize))
        : undefined,
    });
  }
  if (s.locality)
    policy.locality = {
      enabled: s.locality.enabled ?? D.localityEnabled,
      minHealthyPercent: s.locality.minHealthyPercent ?? D.localityMinHealthyPercent,
    };
  if (s.connectionPool) policy.circuitBreaker = omitUndefined({ ...s.connectionPool });
  if (s.outlierDetection) {
    const o = s.outlierDetection;
    policy.outlierDetection = {
      consecutiveFailures: o.consecutiveFailures ?? D.consecutiveFailures,
      consecutiveGatewayErrors: o.consecutiveGatewayErrors ?? D.consecutiveGatewayErrors,
      baseEjectionMs: o.baseEjectionTime === undefined ? D.baseEjectionMs : ms(o.baseEjectionTime),
      maxEjectionMs: o.maxEjectionTime === undefined ? D.maxEjectionMs : ms(o.maxEjectionTime),
      maxEjectionPercent: o.maxEjectionPercent ?? D.maxEjectionPercent,
    };
  }
  if (s.slowStart !== undefined) policy.slowStartMs = ms(s.slowStart);
  if (s.retryBudget)
    policy.retryBudget = {
      percent: s.retryBudget.percent ?? D.retryBudgetPercent,
      minPerSecond: s.retryBudget.minRetriesPerSecond ?? D.retryBudgetMinPerSecond,
    };
  return Object.keys(policy).length > 0 ? policy : undefined;
}

export function rateLimit(tp: TrafficPolicy): RateLimit | undefined {
  const r = tp.spec.rateLimit;
  if (!r) return undefined;
  return {
    requestsPerSecond: r.requestsPerSecond,
    // A bucket smaller than one token could never admit a request; one second's worth is the
    // natural default, as a rate limit is usually thought of per second.
    burst: r.burst ?? Math.max(1, Math.ceil(r.requestsPerSecond)),
    perSource: r.perSource ?? D.rateLimitPerSource,
  };
}

export function healthCheck(tp: TrafficPolicy): HealthCheck | undefined {
  const h = tp.spec.healthCheck;
  if (!h) return undefined;
  const intervalMs = h.interval === undefined ? D.healthCheckIntervalMs : ms(h.interval);
  const timeoutMs = h.timeout === undefined ? D.healthCheckTimeoutMs : ms(h.timeout);
  return omitUndefined({
    http: h.http && {
      path: h.http.path ?? D.healthCheckPath,
      expectedStatuses: h.http.expectedStatuses ?? [],
    },
    tcp: h.tcp && {},
    intervalMs,
    // Validation rejects a timeout longer than the interval only when both are written; with one of
    // them defaulted, clamp instead, so checks never overlap.
    timeoutMs: Math.min(timeoutMs, intervalMs),
    healthyThreshold: h.healthyThreshold ?? D.healthyThreshold,
    unhealthyThreshold: h.unhealthyThreshold ?? D.unhealthyThreshold,
  });
}
