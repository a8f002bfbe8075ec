// The compiler: a pure function from resources + registry to one proxy's config snapshot.
// Same input, same output (and the same version string), so a snapshot that did not change is never
// pushed again and a reconnecting proxy that already runs it gets nothing new.
//
// Cost: every connected proxy compiles on every change, so what does not depend on the proxy (indexes,
// each service's routes, each cluster's endpoints) can be prepared once per state and shared by all of
// them: `prepareState(state)`, passed to each compileSnapshot. The mesh state cache keeps one per
// revision. Without one, compileSnapshot prepares its own: the output is the same either way.

import { createHash } from "node:crypto";
import {
  DEFAULT_PROTOCOL,
  DEFAULT_TRUST_DOMAIN,
  SERVICE_LABEL,
  type FaultInjection,
  type GRPCRoute,
  type HTTPRoute,
  type Mesh,
  type ReferenceGrant,
  type Service,
  type ServicePort,
  type TrafficPolicy,
  type Workload,
  type WorkloadStatus,
} from "../../model/resources.ts";
import type {
  Cluster,
  Endpoint,
  InboundConfig,
  InboundPort,
  OutboundService,
  ProxyIdentity,
  ProxySnapshot,
  Route,
  ServicePortConfig,
} from "../../model/snapshot.ts";
import { grantIndex, type RefContext } from "./backend-refs.ts";
import { routeScopeIndex, routesInScope, type ServiceRoutes } from "./route-scope.ts";
import { attachedGrpcRoutes } from "./grpc-routes.ts";
import { attachedRoutes } from "./routes.ts";
import {
  clusterPolicy,
  faultIndex,
  healthCheck,
  policyIndex,
  rateLimit,
  type FaultIndex,
} from "./traffic.ts";

export interface MeshState {
  mesh?: Mesh;
  services: Service[];
  workloads: Workload[];
  routes: HTTPRoute[];
  /** Absent = none (older callers). */
  grpcRoutes?: GRPCRoute[];
  trafficPolicies: TrafficPolicy[];
  faultInjections: FaultInjection[];
  referenceGrants: ReferenceGrant[];
}

export interface ProxyRequest {
  /** The proxy's own registered Workload. */
  workload: Workload;
  /** Where its app listens (the app port of the Service's first port, and of undeclared ports). */
  appPort: number;
  /**
   * App ports of the Service's other ports, keyed by service port number or port name ("9090",
   * "grpc"). A declared port without an entry is served on the same port number, as a Kubernetes
   * Service's targetPort defaults to its port.
   */
  appPorts?: Record<string, number>;
  /** Services ("name" or "name.namespace") this proxy reaches; undefined = every service in the mesh. */
  reach?: string[];
}

/** The parts of a compile that are the same for every proxy, for one MeshState (filled in lazily). */
export interface PreparedState {
  services: Map<string, Service>;
  /** services' keys, sorted. */
  keys: string[];
  faults: FaultIndex;
  policies: Map<string, TrafficPolicy>;
  /** Workloads by namespace, in state order. */
  workloadsIn: Map<string, Workload[]>;
  /** Each Service's HTTPRoutes, producer and consumer (route-scope.ts). */
  routeScopes: Map<string, ServiceRoutes<HTTPRoute>>;
  /** Each Service's GRPCRoutes, scoped the same way. */
  grpcRouteScopes: Map<string, ServiceRoutes<GRPCRoute>>;
  /** What backendRefs resolve against: Services and ReferenceGrants. */
  refs: RefContext;
  /** Compiled routes by service key, or "key@namespace" for a namespace's consumer routes. */
  routes: Map<string, Route[]>;
  clusters: Map<string, Cluster>;
}

export function prepareState(state: MeshState): PreparedState {
  const services = serviceIndex(state);
  const workloadsIn = new Map<string, Workload[]>();
  for (const w of state.workloads) {
    let list = workloadsIn.get(w.metadata.namespace);
    if (list === undefined) workloadsIn.set(w.metadata.namespace, (list = []));
    list.push(w);
  }
  return {
    services,
    keys: [...services.keys()].sort((a, b) => (a < b ? -1 : 1)),
    faults: faultIndex(state.faultInjections),
    policies: policyIndex(state.trafficPolicies),
    workloadsIn,
    routeScopes: routeScopeIndex(state.routes, services),
    grpcRouteScopes: routeScopeIndex(state.grpcRoutes ?? [], services),
    refs: { services, grants: grantIndex(state.referenceGrants) },
    routes: new Map(),
    clusters: new Map(),
  };
}

/** `prepared` must come from prepareState(state) for this very state. */
export function compileSnapshot(
  state: MeshState,
  proxy: ProxyRequest,
  prepared: PreparedState = prepareState(state),
): ProxySnapshot {
  const self = proxy.workload;
  const namespace = self.metadata.namespace;
  const sh = prepared;
  const { services, policies } = sh;
  const reach = proxy.reach && new Set(proxy.reach.map((r) => canonical(r, namespace)));

  const outbound: Record<string, OutboundService> = {};
  const clusters: Record<string, Cluster> = {};
  const addCluster = (name: string) => {
    if (clusters[name] !== undefined) return;
    let c = sh.clusters.get(name);
    if (c === undefined) sh.clusters.set(name, (c = cluster(name, services, sh.workloadsIn, policies)));
    clusters[name] = c;
  };
  for (const key of sh.keys) {
    if (reach && !reach.has(key)) continue;
    const svc = services.get(key) as Service;
    // GAMMA: the caller's namespace's consumer routes for this Service, else its producer routes;
    // producer results are shared by every namespace that has no consumer routes of its own.
    const http = routesInScope(sh.routeScopes, key, namespace);
    const grpc = routesInScope(sh.grpcRouteScopes, key, namespace);
    const cacheKey = http.consumer || grpc.consumer ? `${key}@${namespace}` : key;
    let routes = sh.routes.get(cacheKey);
    if (routes === undefined)
      sh.routes.set(cacheKey, (routes = routesFor(svc, http.routes, grpc.routes, sh)));
    for (const r of routes) {
      // An invalid backend has no cluster: the proxy answers its share of requests itself.
      for (const b of r.backends) if (b.invalid === undefined) addCluster(b.cluster);
      // Mirrored copies go to their own cluster, which the proxy must have like any backend's.
      for (const m of r.mirrors ?? []) addCluster(m.cluster);
    }
    // TCP ports are proxied to the Service's own endpoints (HTTPRoutes do not apply to them).
    if (svc.spec.ports?.some((p) => p.protocol === "tcp")) addCluster(key);
    const port = svc.spec.ports?.[0];
    outbound[key] = {
      name: svc.metadata.name,
      namespace: svc.metadata.namespace,
      hosts: hostsOf(svc.metadata.name, svc.metadata.namespace, namespace),
      port: port?.port ?? 0,
      protocol: port?.protocol ?? "http",
      ports: (svc.spec.ports ?? []).map((p) => servicePort(p)),
      routes,
    };
  }

  const identity: ProxyIdentity = {
    service: self.spec.service,
    namespace,
    identity: self.spec.identity ?? "",
    workload: self.metadata.name,
  };
  if (self.spec.zone) identity.zone = self.spec.zone;

  // The policy of the proxy's own service also guards its inbound side: every instance limits and
  // health-checks its own app.
  const inbound: InboundConfig = {
    appAddress: "127.0.0.1",
    appPort: proxy.appPort,
    ports: inboundPorts(services.get(`${self.spec.service}.${namespace}`), proxy),
  };
  const own = policies.get(`${self.spec.service}.${namespace}`);
  const limit = own && rateLimit(own);
  if (limit) inbound.rateLimit = limit;
  const check = own && healthCheck(own);
  if (check) inbound.healthCheck = check;

  const body = {
    proxy: identity,
    mesh: {
      trustDomain: state.mesh?.spec.trustDomain ?? DEFAULT_TRUST_DOMAIN,
      mtlsMode: state.mesh?.spec.mtls?.mode ?? "STRICT",
    },
    inbound,
    outbound,
    clusters,
  };
  return { version: versionOf(body), ...body };
}

function servicePort(p: ServicePort): ServicePortConfig {
  const out: ServicePortConfig = { port: p.port, protocol: p.protocol ?? DEFAULT_PROTOCOL };
  if (p.name !== undefined) out.name = p.name;
  return out;
}

/**
 * The proxy's own Service's ports → app ports: the first port is served on the proxy's appPort
 * (`--port`), another one on what `appPorts` names for it (by number, then by name), else on its own
 * number.
 */
function inboundPorts(svc: Service | undefined, proxy: ProxyRequest): InboundPort[] {
  return (svc?.spec.ports ?? []).map((p, i) => {
    const given =
      proxy.appPorts?.[String(p.port)] ?? (p.name === undefined ? undefined : proxy.appPorts?.[p.name]);
    const out: InboundPort = { ...servicePort(p), appPort: given ?? (i === 0 ? proxy.appPort : p.port) };
    return out;
  });
}

/** Declared services plus the implicit ones that registered workloads name, by "name.namespace". */
function serviceIndex(state: MeshState): Map<string, Service> {
  const out = new Map<string, Service>();
  for (const s of state.services) out.set(`${s.metadata.name}.${s.metadata.namespace}`, s);
  for (const w of state.workloads) {
    const key = `${w.spec.service}.${w.metadata.namespace}`;
    if (!out.has(key)) {
      out.set(key, {
        apiVersion: "weft.dev/v1alpha1",
        kind: "Service",
        metadata: { name: w.spec.service, namespace: w.metadata.namespace },
        spec: {},
      });
    }
  }
  return out;
}

/**
 * GAMMA (GEP-1426, "Route types"): when both a GRPCRoute and an HTTPRoute attach to one Service, the
 * GRPCRoute wins and the HTTPRoutes are ignored for it (Linkerd does the same).
 */
function routesFor(
  svc: Service,
  httpInScope: readonly HTTPRoute[],
  grpcInScope: readonly GRPCRoute[],
  sh: PreparedState,
): Route[] {
  const grpc = grpcInScope.length > 0 ? attachedGrpcRoutes(svc, grpcInScope, sh.faults, sh.refs) : [];
  const attached = grpc.length > 0 ? grpc : attachedRoutes(svc, httpInScope, sh.faults, sh.refs);
  const self = `${svc.metadata.name}.${svc.metadata.namespace}`;
  const fallback: Route = { name: "default", matches: [{}], backends: [{ cluster: self, weight: 1 }] };
  if (attached.length === 0) return [fallback];
  // Routes limited to some ports leave the others to the default route (a port with routes of its
  // own answers no_route when none matches, as with any routed port).
  if (attached.some((r) => r.ports === undefined)) return attached;
  const routed = new Set(attached.flatMap((r) => r.ports as number[]));
  const rest = (svc.spec.ports ?? []).map((p) => p.port).filter((p) => !routed.has(p));
  return rest.length === 0 ? attached : [...attached, { ...fallback, ports: rest }];
}

function cluster(
  name: string,
  services: Map<string, Service>,
  workloadsIn: Map<string, Workload[]>,
  policies: Map<string, TrafficPolicy>,
): Cluster {
  const svc = services.get(name);
  const [svcName, ns] = splitCanonical(name);
  let endpoints: Endpoint[] = [];
  if (svc) {
    const selector = svc.spec.selector ?? { [SERVICE_LABEL]: svcName };
    const healthy: Endpoint[] = [];
    for (const w of workloadsIn.get(ns) ?? []) {
      const labels: Record<string, string> = { ...w.metadata.labels, [SERVICE_LABEL]: w.spec.service };
      if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) continue;
      // Starting or draining: no traffic at all, not even in panic mode below.
      if (!isServing(w)) continue;
      const ep: Endpoint = { address: w.spec.address, port: w.spec.port, workload: w.metadata.name, labels };
      if (w.spec.identity) ep.identity = w.spec.identity;
      if (w.spec.zone) ep.zone = w.spec.zone;
      endpoints.push(ep);
      if (!isUnhealthy(w)) healthy.push(ep);
    }
    // Workloads whose sidecar reports their app unhealthy get no traffic — unless every workload of
    // the cluster is unhealthy. Then all are kept ("panic mode", as Envoy's panic threshold): the
    // health check itself may be what is wrong, and a chance of success beats certain failure.
    if (healthy.length > 0) endpoints = healthy;
    endpoints.sort((a, b) => (a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : 0));
  }
  const out: Cluster = { name, service: svcName, namespace: ns, endpoints };
  // No TrafficPolicy (or one that sets nothing for callers): no `policy`, and the proxy uses its
  // default balancer.
  const tp = policies.get(name);
  const policy = tp && clusterPolicy(tp);
  if (policy) out.policy = policy;
  return out;
}

/** A workload is serving unless its sidecar says otherwise (starting, draining). */
function isServing(w: Workload): boolean {
  return (w.status as Partial<WorkloadStatus> | undefined)?.serving !== false;
}

/** Only an explicit "Unhealthy" counts: a workload without status (static, or not checked) is healthy. */
function isUnhealthy(w: Workload): boolean {
  return (w.status as Partial<WorkloadStatus> | undefined)?.health === "Unhealthy";
}

/** Host names that reach a service from a proxy in `fromNamespace` (as Kubernetes DNS search would). */
export function hostsOf(name: string, ns: string, fromNamespace: string): string[] {
  const hosts = [`${name}.${ns}`, `${name}.${ns}.svc`, `${name}.${ns}.svc.cluster.local`];
  return ns === fromNamespace ? [name, ...hosts] : hosts;
}

export function canonical(ref: string, defaultNamespace: string): string {
  const [name, ns] = ref.split(".");
  return `${name}.${ns || defaultNamespace}`;
}

function splitCanonical(key: string): [string, string] {
  const dot = key.indexOf(".");
  return [key.slice(0, dot), key.slice(dot + 1)];
}

function versionOf(body: unknown): string {
  return createHash("sha256").update(JSON.stringify(body)).digest("hex").slice(0, 16);
}
