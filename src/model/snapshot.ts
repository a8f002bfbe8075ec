// The compiled, per-proxy configuration: a plain serialisable value. The control plane's compiler
// produces it (src/control-plane/compile/), the config stream carries it, the proxy runs it.

import type { GrpcRetryCondition } from "./grpc-status.ts";
import type { MtlsMode, PathMatchType, Protocol } from "./resources.ts";

export interface ProxySnapshot {
  /** Changes whenever the content changes; equal versions mean equal content. */
  version: string;
  proxy: ProxyIdentity;
  mesh: { trustDomain: string; mtlsMode: MtlsMode };
  inbound: InboundConfig;
  /** Services this proxy can reach, by canonical name "name.namespace". */
  outbound: Record<string, OutboundService>;
  /** Backends (balanced endpoint sets) referenced by outbound routes, by cluster name. */
  clusters: Record<string, Cluster>;
  /**
   * On-demand scoping: names the proxy subscribed to that name no Service (yet), sorted. A request
   * for one is answered at once (no_route) instead of waiting; when the Service appears, it is sent.
   */
  unresolved?: string[];
}

export interface ProxyIdentity {
  service: string;
  namespace: string;
  /** SPIFFE ID the proxy's certificate carries. */
  identity: string;
  /** Name of the Workload the proxy registered. */
  workload: string;
  /** The proxy's zone (locality-aware balancing prefers endpoints there). */
  zone?: string;
}

export interface InboundConfig {
  /** Where the local app listens. */
  appAddress: string;
  appPort: number;
  /**
   * Every declared port of the proxy's own Service, with the app port that serves it. A mesh request
   * names the service port it targets (x-weft-dst-port, or a TCP tunnel's preamble); one the Service
   * does not declare goes to `appPort`. Empty (or absent, from older control planes) when the
   * Service declares no ports.
   */
  ports?: InboundPort[];
  /** Local rate limit on requests to this instance (from the proxy's own service's TrafficPolicy). */
  rateLimit?: RateLimit;
  /** Active health check of the local app; results are reported to the control plane. */
  healthCheck?: HealthCheck;
}

export interface InboundPort {
  /** The service port callers use. */
  port: number;
  /** Where the local app serves it. */
  appPort: number;
  protocol: Protocol;
  name?: string;
}

/** A declared port of a Service, as callers see it. */
export interface ServicePortConfig {
  port: number;
  protocol: Protocol;
  name?: string;
}

/** Token bucket: `requestsPerSecond` refill, `burst` capacity; `perSource` keeps one bucket per peer identity. */
export interface RateLimit {
  requestsPerSecond: number;
  burst: number;
  perSource: boolean;
}

export interface HealthCheck {
  /**
   * HTTP GET of `path`, healthy when the status is in `expectedStatuses`; or a TCP connect. An empty
   * `expectedStatuses` means any status from 200 to 399.
   */
  http?: { path: string; expectedStatuses: number[] };
  tcp?: Record<string, never>;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive successes to turn healthy, consecutive failures to turn unhealthy. */
  healthyThreshold: number;
  unhealthyThreshold: number;
}

export interface OutboundService {
  name: string;
  namespace: string;
  /** Host names (without port) that resolve to this service: "reviews", "reviews.default", ... */
  hosts: string[];
  /** The service's first declared port (what `http://reviews:PORT/` uses); 0 when undeclared (any port). */
  port: number;
  /** The first port's protocol. */
  protocol: Protocol;
  /** Every declared port, in declaration order (the first is `port`); empty or absent when undeclared. */
  ports?: ServicePortConfig[];
  /** Ordered: the first route whose match accepts the request wins. Always ends with a catch-all when the service has endpoints and no explicit route catches all. */
  routes: Route[];
}

export interface Route {
  /** Stable name used in metrics' `route` label: "<namespace>/<httproute>/<rule index>" or "default". */
  name: string;
  matches: RouteMatch[];
  /**
   * The service ports the route applies to (its parentRefs' `port` / `sectionName`); absent = every
   * port of the service.
   */
  ports?: number[];
  backends: WeightedBackend[];
  /** Present only when the rule uses them: a route without them costs nothing extra per request. */
  filters?: RouteFilters;
  timeouts?: RouteTimeouts;
  retry?: RetryPolicy;
  /** Hedged requests: a second attempt after `delayMs` without an answer; the first answer wins. */
  hedge?: HedgePolicy;
  fault?: FaultPolicy;
  mirrors?: Mirror[];
}

export interface HeaderModifier {
  /** Replace (or add) these headers. Names lower-case. */
  set?: { name: string; value: string }[];
  /** Append these values. */
  add?: { name: string; value: string }[];
  /** Remove these headers (lower-case names). */
  remove?: string[];
}

export type PathModifier =
  | { type: "ReplaceFullPath"; value: string }
  /** Replaces the matched PathPrefix (the route's single path match) with `value`. */
  | { type: "ReplacePrefixMatch"; value: string };

export interface RouteFilters {
  requestHeaders?: HeaderModifier;
  responseHeaders?: HeaderModifier;
  /** Answer with a redirect instead of forwarding. Unset parts keep the request's own. */
  redirect?: {
    scheme?: "http" | "https";
    hostname?: string;
    port?: number;
    path?: PathModifier;
    statusCode: 301 | 302 | 303 | 307 | 308;
  };
  /** Rewrite before forwarding. */
  rewrite?: { hostname?: string; path?: PathModifier };
}

/** 0 disables a timeout, as "0s" does in the Gateway API. */
export interface RouteTimeouts {
  /** Whole request, from the proxy receiving it to the response headers, retries included (ms). */
  requestMs?: number;
  /** Each attempt to a backend (ms): the per-try timeout. */
  backendRequestMs?: number;
}

/** Conditions under which an attempt is retried. */
export type RetryCondition =
  /** Any 5xx response from the upstream. */
  | "5xx"
  /** 502, 503, 504 from the upstream. */
  | "gateway-error"
  /** The connection to the endpoint could not be made (refused, TLS failure, ...). */
  | "connect-failure"
  /** The upstream reset or closed the connection before response headers. */
  | "reset"
  /** The per-try timeout fired. */
  | "timeout";

export interface RetryPolicy {
  /** Retries after the first attempt (so at most attempts + 1 requests). */
  attempts: number;
  on: RetryCondition[];
  /** Also retry on these exact status codes. */
  codes: number[];
  /** Exponential backoff with full jitter: delay = random(0, min(maxMs, baseMs * 2^retry)). */
  backoff: { baseMs: number; maxMs: number };
  /** Retry non-idempotent methods (POST, PATCH) too. Default false. */
  nonIdempotent: boolean;
  /** Request bodies up to this size are buffered so they can be replayed; larger ones are not retried. */
  maxBufferedBodyBytes: number;
  /**
   * Routes from a GRPCRoute: also retry responses whose head carries one of these gRPC statuses
   * (decided by src/proxy/grpc/retry.ts grpcRetryReason). Absent on routes from HTTPRoutes.
   */
  grpcOn?: GrpcRetryCondition[];
}

export interface HedgePolicy {
  delayMs: number;
  /** Extra attempts at most (1 = one hedge). */
  maxHedges: number;
}

export interface FaultPolicy {
  delay?: { ms: number; percent: number };
  /**
   * `grpcStatus` (0–16) is set when the FaultInjection aborts with a gRPC status: gRPC requests get
   * it in a gRPC-shaped reply, others get `status` (its HTTP equivalent). Without it, gRPC requests
   * get `status` mapped as gRPC clients map HTTP statuses.
   */
  abort?: { status: number; percent: number; grpcStatus?: number };
}

export interface Mirror {
  cluster: string;
  /** Share of requests mirrored, 0-100 (fractions allowed). */
  percent: number;
}

/** All present conditions must hold. An empty match accepts every request. */
export interface RouteMatch {
  path?: { type: PathMatchType; value: string };
  headers?: { type: "Exact" | "RegularExpression"; name: string; value: string }[];
  queryParams?: { type: "Exact" | "RegularExpression"; name: string; value: string }[];
  method?: string;
}

export interface WeightedBackend {
  /** The cluster requests go to; for an invalid backend, the "name.namespace" it referenced (no such cluster). */
  cluster: string;
  weight: number;
  /** Header modifiers of this backend only (Gateway API backendRefs[].filters), applied after the route's. */
  filters?: BackendFilters;
  /**
   * Present when the reference cannot be resolved (Gateway API ResolvedRefs=False): the backend keeps
   * its weight, and the requests that pick it are answered 500 `invalid_backend`, as the Gateway API
   * requires — a missing Service is a configuration error, unlike a Service with no ready endpoints (503).
   */
  invalid?: InvalidReference;
}

export type BackendFilters = Pick<RouteFilters, "requestHeaders" | "responseHeaders">;

export interface InvalidReference {
  /** The Gateway API's ResolvedRefs reasons. */
  reason: "BackendNotFound" | "RefNotPermitted";
  /** What is wrong, for the 500's detail and `weft get`: "Service ghost.shop does not exist". */
  message: string;
}

export interface Cluster {
  name: string;
  /** The Service the cluster is (metrics' destination_service). */
  service: string;
  namespace: string;
  /**
   * Workloads reported Unhealthy are left out, unless every workload of the cluster is: then all are
   * kept (panic mode), since a chance of success beats certain failure.
   */
  endpoints: Endpoint[];
  /** From the TrafficPolicy targeting the cluster's Service; absent = defaults. */
  policy?: ClusterPolicy;
}

export type LoadBalancerType = "RoundRobin" | "Random" | "LeastRequest" | "PeakEWMA" | "RingHash" | "Maglev";

export interface ClusterPolicy {
  loadBalancer?: {
    type: LoadBalancerType;
    /** What consistent hashing (RingHash, Maglev) hashes; exactly one is set for those types. */
    hashOn?: { header?: string; cookie?: string; sourceAddress?: boolean };
    /** Ring size (RingHash: minimum ring entries; Maglev: table size, prime). */
    tableSize?: number;
  };
  /** Prefer endpoints in the caller's zone while at least `minHealthyPercent` of them are available there. */
  locality?: { enabled: boolean; minHealthyPercent: number };
  circuitBreaker?: {
    maxConnections?: number;
    maxPendingRequests?: number;
    maxRequests?: number;
    maxRetries?: number;
  };
  outlierDetection?: {
    /** Consecutive failures (5xx, gateway errors, connect errors) that eject an endpoint. */
    consecutiveFailures: number;
    /** Consecutive gateway errors (502/503/504, connect errors, resets) that eject; 0 = off. */
    consecutiveGatewayErrors: number;
    /** First ejection lasts this long; the n-th lasts n times as long (capped by maxEjectionMs). */
    baseEjectionMs: number;
    maxEjectionMs: number;
    /** Never eject more than this share of the cluster's endpoints. */
    maxEjectionPercent: number;
  };
  /** An endpoint that joins (or returns from ejection) gets traffic ramping up over this window (ms). */
  slowStartMs?: number;
  /** Retries to this cluster may add at most `percent` % of requests, plus `minPerSecond`. */
  retryBudget?: { percent: number; minPerSecond: number };
}

export interface Endpoint {
  address: string;
  port: number;
  /** Expected SPIFFE ID of the peer; present ⇒ connect with mTLS and verify it. Absent ⇒ plaintext (no sidecar). */
  identity?: string;
  workload: string;
  labels: Record<string, string>;
  zone?: string;
}
