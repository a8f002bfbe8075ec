// The resource kinds users write (product.md §4). Kubernetes-style envelopes; weft's own kinds use
// apiVersion weft.dev/v1alpha1, routes use the Gateway API kinds unchanged.

import type { GrpcStatusName } from "./grpc-status.ts";

export const WEFT_API_VERSION = "weft.dev/v1alpha1";
export const GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1";

export const KINDS = [
  "Mesh",
  "Service",
  "Workload",
  "HTTPRoute",
  "GRPCRoute",
  "TrafficPolicy",
  "FaultInjection",
  "ReferenceGrant",
] as const;
export type Kind = (typeof KINDS)[number];

/** apiVersion each kind accepts. */
export const API_VERSIONS: Record<Kind, readonly string[]> = {
  Mesh: [WEFT_API_VERSION],
  Service: [WEFT_API_VERSION],
  Workload: [WEFT_API_VERSION],
  HTTPRoute: [GATEWAY_API_VERSION, "gateway.networking.k8s.io/v1beta1"],
  GRPCRoute: [GATEWAY_API_VERSION],
  TrafficPolicy: [WEFT_API_VERSION],
  FaultInjection: [WEFT_API_VERSION],
  ReferenceGrant: ["gateway.networking.k8s.io/v1beta1", GATEWAY_API_VERSION],
};

export const DEFAULT_NAMESPACE = "default";
export const DEFAULT_TRUST_DOMAIN = "weft.local";
/** Label every Workload carries implicitly: the service it belongs to. Service selectors may use it. */
export const SERVICE_LABEL = "weft.dev/service";

export interface Metadata {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Set by the store: the revision at which this resource last changed. */
  resourceVersion?: string;
  /** Set by the store on creation (ISO-8601). */
  creationTimestamp?: string;
}

export interface Resource<K extends Kind = Kind, S = unknown> {
  apiVersion: string;
  kind: K;
  metadata: Metadata;
  spec: S;
  /** Written by weft itself (e.g. a Workload's health), never by `weft apply`. */
  status?: Record<string, unknown>;
}

/** Status of a registered Workload, as its sidecar's active health check reports it. */
export interface WorkloadStatus {
  /** What the sidecar's health check last reported; absent when none has (healthy). */
  health?: "Healthy" | "Unhealthy";
  /** Why, e.g. "GET /healthz: 500" or "connect: refused". */
  detail?: string;
  /** ISO-8601 time of the last change of `health`. */
  since?: string;
  /**
   * false while the instance must get no traffic at all: its sidecar is starting (no config yet, or
   * its app does not accept connections or pass its health check yet) or draining. Unlike an
   * Unhealthy workload it is never kept in "panic mode". Absent = serving.
   */
  serving?: boolean;
}

export type MtlsMode = "STRICT" | "PERMISSIVE";

export interface MeshSpec {
  /** SPIFFE trust domain; default weft.local. */
  trustDomain?: string;
  mtls?: { mode?: MtlsMode };
}

export type Protocol = "http" | "http2" | "grpc" | "tcp";

export interface ServicePort {
  name?: string;
  /** The port clients use in URLs (http://reviews:9080/). */
  port: number;
  protocol?: Protocol;
}

export interface ServiceSpec {
  ports?: ServicePort[];
  /**
   * Which workloads back this service, by label. Default: { "weft.dev/service": <service name> },
   * i.e. every workload registered for this service. A selector such as
   * { "weft.dev/service": reviews, version: v2 } defines a subset service for traffic splits.
   */
  selector?: Record<string, string>;
}

export interface WorkloadSpec {
  /** The service this instance belongs to (same namespace). */
  service: string;
  /** Where traffic for this instance goes. */
  address: string;
  /** The port on `address`: the sidecar's inbound mTLS port, or the app port for a static workload. */
  port: number;
  /** Present when a weft sidecar fronts this workload: traffic to it is mTLS and it presents this SPIFFE ID. */
  identity?: string;
  zone?: string;
}

export type PathMatchType = "PathPrefix" | "Exact" | "RegularExpression";

export interface HTTPRouteMatch {
  path?: { type?: PathMatchType; value?: string };
  headers?: { type?: "Exact" | "RegularExpression"; name: string; value: string }[];
  queryParams?: { type?: "Exact" | "RegularExpression"; name: string; value: string }[];
  method?: string;
}

export interface ParentRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  /** Limits the route to this port of the Service. */
  port?: number;
  /** Limits the route to the Service port of this name (GAMMA). */
  sectionName?: string;
}

export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  /** Gateway API HTTPBackendRef.filters: applied only to requests sent to this backend (header modifiers). */
  filters?: HTTPRouteFilter[];
}

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface HTTPHeaderFilter {
  set?: HTTPHeader[];
  add?: HTTPHeader[];
  remove?: string[];
}

export interface HTTPPathModifier {
  type: "ReplaceFullPath" | "ReplacePrefixMatch";
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export type HTTPRouteFilterType =
  | "RequestHeaderModifier"
  | "ResponseHeaderModifier"
  | "RequestRedirect"
  | "URLRewrite"
  | "RequestMirror"
  | "ExtensionRef";

/** Gateway API HTTPRouteFilter: `type` says which one of the other fields is set. */
export interface HTTPRouteFilter {
  type: HTTPRouteFilterType;
  requestHeaderModifier?: HTTPHeaderFilter;
  responseHeaderModifier?: HTTPHeaderFilter;
  requestRedirect?: {
    scheme?: "http" | "https";
    hostname?: string;
    path?: HTTPPathModifier;
    port?: number;
    statusCode?: 301 | 302 | 303 | 307 | 308;
  };
  urlRewrite?: { hostname?: string; path?: HTTPPathModifier };
  requestMirror?: {
    backendRef: BackendRef;
    /** 0-100; default 100. */
    percent?: number;
    fraction?: { numerator: number; denominator?: number };
  };
  /** weft: { group: weft.dev, kind: FaultInjection, name } */
  extensionRef?: { group: string; kind: string; name: string };
}

/** Gateway API durations: "1h", "10s", "500ms", "1m30s". */
export type GatewayDuration = string;

export interface HTTPRouteRetry {
  /** Gateway API (GEP-1731): retries after the first attempt. */
  attempts?: number;
  /** Gateway API: retry on these status codes. */
  codes?: number[];
  /** Gateway API: initial backoff; doubles per retry, with jitter. */
  backoff?: GatewayDuration;
  /** weft: conditions besides `codes`. Default [connect-failure, reset, timeout], plus gateway-error without `codes`. */
  on?: ("5xx" | "gateway-error" | "connect-failure" | "reset" | "timeout")[];
  /** weft: cap on the backoff. Default 10 × backoff. */
  maxBackoff?: GatewayDuration;
  /** weft: also retry POST/PATCH. Default false. */
  nonIdempotent?: boolean;
  /** weft: hedging: send another attempt after this delay without an answer. */
  hedge?: { delay: GatewayDuration; maxHedges?: number };
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: BackendRef[];
  timeouts?: { request?: GatewayDuration; backendRequest?: GatewayDuration };
  retry?: HTTPRouteRetry;
}

export interface HTTPRouteSpec {
  parentRefs: ParentRef[];
  hostnames?: string[];
  rules?: HTTPRouteRule[];
}

/** Gateway API GRPCMethodMatch: service and/or method (at least one), exact or regular expressions. */
export interface GRPCMethodMatch {
  type?: "Exact" | "RegularExpression";
  /** Fully qualified service, e.g. "shop.v1.Catalog". Omitted: any service. */
  service?: string;
  /** Method name, e.g. "GetItem". Omitted: any method. */
  method?: string;
}

export interface GRPCRouteMatch {
  method?: GRPCMethodMatch;
  headers?: { type?: "Exact" | "RegularExpression"; name: string; value: string }[];
}

export type GRPCRouteFilterType =
  "RequestHeaderModifier" | "ResponseHeaderModifier" | "RequestMirror" | "ExtensionRef";

/** Gateway API GRPCRouteFilter: the HTTPRoute filter shape, with the types GRPCRoute allows. */
export type GRPCRouteFilter = Pick<
  HTTPRouteFilter,
  "requestHeaderModifier" | "responseHeaderModifier" | "requestMirror" | "extensionRef"
> & { type: GRPCRouteFilterType };

/** What a GRPCRoute retry may retry on: gRPC statuses (Envoy's names) and connection-level failures. */
export type GRPCRetryOn =
  | "cancelled"
  | "deadline-exceeded"
  | "internal"
  | "resource-exhausted"
  | "unavailable"
  | "connect-failure"
  | "reset"
  | "timeout";

/** weft extension on GRPCRoute rules (docs/resources.md): HTTPRoute's retry stanza, with gRPC conditions. */
export interface GRPCRouteRetry {
  attempts?: number;
  /** Default [connect-failure, reset, timeout, unavailable]. */
  on?: GRPCRetryOn[];
  backoff?: GatewayDuration;
  maxBackoff?: GatewayDuration;
  hedge?: { delay: GatewayDuration; maxHedges?: number };
}

export interface GRPCRouteRule {
  name?: string;
  matches?: GRPCRouteMatch[];
  filters?: GRPCRouteFilter[];
  backendRefs?: BackendRef[];
  /** weft extension (not in Gateway API v1's GRPCRoute): as HTTPRoute's. */
  timeouts?: { request?: GatewayDuration; backendRequest?: GatewayDuration };
  /** weft extension (not in Gateway API v1's GRPCRoute). */
  retry?: GRPCRouteRetry;
}

export interface GRPCRouteSpec {
  parentRefs: ParentRef[];
  hostnames?: string[];
  rules?: GRPCRouteRule[];
}

export interface PolicyTargetRef {
  group?: string;
  kind: "Service";
  name: string;
}

export interface TrafficPolicySpec {
  /** The Service (same namespace) whose traffic this policy shapes. */
  targetRef: PolicyTargetRef;
  loadBalancer?: {
    type?: "RoundRobin" | "Random" | "LeastRequest" | "PeakEWMA" | "RingHash" | "Maglev";
    hash?: { header?: string; cookie?: string; sourceAddress?: boolean };
    tableSize?: number;
  };
  locality?: { enabled?: boolean; minHealthyPercent?: number };
  connectionPool?: {
    maxConnections?: number;
    maxPendingRequests?: number;
    maxRequests?: number;
    maxRetries?: number;
  };
  outlierDetection?: {
    consecutiveFailures?: number;
    consecutiveGatewayErrors?: number;
    baseEjectionTime?: GatewayDuration;
    maxEjectionTime?: GatewayDuration;
    maxEjectionPercent?: number;
  };
  slowStart?: GatewayDuration;
  retryBudget?: { percent?: number; minRetriesPerSecond?: number };
  healthCheck?: {
    http?: { path?: string; expectedStatuses?: number[] };
    tcp?: Record<string, never>;
    interval?: GatewayDuration;
    timeout?: GatewayDuration;
    healthyThreshold?: number;
    unhealthyThreshold?: number;
  };
  /** Inbound: limits requests to each instance of the target service. */
  rateLimit?: { requestsPerSecond: number; burst?: number; perSource?: boolean };
}

export interface FaultInjectionSpec {
  delay?: { fixedDelay: GatewayDuration; percent?: number };
  /** Exactly one of httpStatus and grpcStatus (a gRPC status name such as UNAVAILABLE). */
  abort?: { httpStatus?: number; grpcStatus?: GrpcStatusName; percent?: number };
}

/** The Gateway API group, as a ReferenceGrant's `from` names route kinds. */
export const GATEWAY_API_GROUP = "gateway.networking.k8s.io";

/**
 * Gateway API ReferenceGrant: lets the listed kinds in the listed namespaces (`from`) refer to the
 * listed kinds (optionally by name) in the grant's own namespace (`to`). weft reads it for backendRefs
 * from HTTPRoutes (and GRPCRoutes) to Services in another namespace.
 */
export interface ReferenceGrantSpec {
  from: { group: string; kind: string; namespace: string }[];
  to: { group: string; kind: string; name?: string }[];
}

export type Mesh = Resource<"Mesh", MeshSpec>;
export type Service = Resource<"Service", ServiceSpec>;
export type Workload = Resource<"Workload", WorkloadSpec>;
export type HTTPRoute = Resource<"HTTPRoute", HTTPRouteSpec>;
export type GRPCRoute = Resource<"GRPCRoute", GRPCRouteSpec>;
export type TrafficPolicy = Resource<"TrafficPolicy", TrafficPolicySpec>;
export type FaultInjection = Resource<"FaultInjection", FaultInjectionSpec>;
export type ReferenceGrant = Resource<"ReferenceGrant", ReferenceGrantSpec>;
export type AnyResource =
  Mesh | Service | Workload | HTTPRoute | GRPCRoute | TrafficPolicy | FaultInjection | ReferenceGrant;

/** Store key of a resource: /weft/resources/<Kind>/<namespace>/<name>. */
export function resourceKey(kind: Kind, namespace: string, name: string): string {
  return `${RESOURCE_PREFIX}${kind}/${namespace}/${name}`;
}
export const RESOURCE_PREFIX = "/weft/resources/";

/** "reviews" → { name: "reviews", namespace: "default" }; "reviews.shop" → namespace "shop". */
export function parseServiceName(s: string): { name: string; namespace: string } {
  const dot = s.indexOf(".");
  if (dot < 0) return { name: s, namespace: DEFAULT_NAMESPACE };
  return { name: s.slice(0, dot), namespace: s.slice(dot + 1).split(".")[0] || DEFAULT_NAMESPACE };
}

/** Accepts kind names case-insensitively and in plural, as `weft get` does. */
export function normalizeKind(s: string): Kind | undefined {
  // Plurals: "services" → "service", "trafficpolicies" → "trafficpolicy".
  const l = s.toLowerCase().replace(/ies$/, "y").replace(/s$/, "");
  const aliases: Record<string, Kind> = {
    mesh: "Mesh",
    meshe: "Mesh",
    service: "Service",
    svc: "Service",
    workload: "Workload",
    wl: "Workload",
    httproute: "HTTPRoute",
    route: "HTTPRoute",
    grpcroute: "GRPCRoute",
    trafficpolicy: "TrafficPolicy",
    tp: "TrafficPolicy",
    faultinjection: "FaultInjection",
    fault: "FaultInjection",
    referencegrant: "ReferenceGrant",
    refgrant: "ReferenceGrant",
  };
  return aliases[l];
}

// Enumerations and limits the validator enforces (src/model/validate-*.ts). Exported so the compiler,
// the CLI's completions and the docs can share them.

export const PROTOCOLS = ["http", "http2", "grpc", "tcp"] as const satisfies readonly Protocol[];
export const DEFAULT_PROTOCOL: Protocol = "http";
export const MTLS_MODES = ["STRICT", "PERMISSIVE"] as const satisfies readonly MtlsMode[];
export const DEFAULT_MTLS_MODE: MtlsMode = "STRICT";
/** The only name a Mesh may have: there is one Mesh per mesh. */
export const MESH_NAME = "default";

export const PATH_MATCH_TYPES = [
  "PathPrefix",
  "Exact",
  "RegularExpression",
] as const satisfies readonly PathMatchType[];
export const DEFAULT_PATH_MATCH_TYPE: PathMatchType = "PathPrefix";
export const HEADER_MATCH_TYPES = ["Exact", "RegularExpression"] as const;
export const HTTP_METHODS = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
] as const;
export const DEFAULT_BACKEND_WEIGHT = 1;
export const MAX_BACKEND_WEIGHT = 1_000_000;

/** The Gateway API's own limits on an HTTPRoute, enforced as-is so a route valid here is valid on Kubernetes. */
export const HTTPROUTE_LIMITS = {
  parentRefs: 16,
  hostnames: 16,
  rules: 16,
  matchesPerRule: 8,
  backendRefsPerRule: 16,
  headersPerMatch: 16,
  queryParamsPerMatch: 16,
} as const;
