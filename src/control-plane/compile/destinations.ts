// One destination's compiled pieces, the same for every caller in one scope: a Service's cluster (its
// selected, serving workloads as endpoints, and its TrafficPolicy's caller side) and its outbound
// entry (ports, host names, routes as its caller's namespace sees them). Built from the indexed mesh
// (mesh-index.ts); prepared-state.ts caches them across revisions and decides when to rebuild.

import {
  DEFAULT_PROTOCOL,
  type GRPCRoute,
  type HTTPRoute,
  type Service,
  type ServicePort,
  type Workload,
  type WorkloadStatus,
} from "../../model/resources.ts";
import type { Cluster, Endpoint, OutboundService, Route, ServicePortConfig } from "../../model/snapshot.ts";
import type { RefContext } from "./backend-refs.ts";
import { attachedGrpcRoutes } from "./grpc-routes.ts";
import { labelsOf, selectorOf, type MeshIndex } from "./mesh-index.ts";
import { attachedRoutes } from "./routes.ts";
import { clusterPolicy } from "./traffic.ts";

export function compileCluster(index: MeshIndex, name: string): Cluster {
  const svc = index.services.get(name);
  const [svcName, ns] = splitCanonical(name);
  let endpoints: Endpoint[] = [];
  if (svc) {
    const healthy: Endpoint[] = [];
    for (const w of index.selected(ns, selectorOf(svc))) {
      // Starting or draining: no traffic at all, not even in panic mode below.
      if (!isServing(w)) continue;
      const ep: Endpoint = {
        address: w.spec.address,
        port: w.spec.port,
        workload: w.metadata.name,
        labels: labelsOf(w),
      };
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
  const tp = index.policy(name);
  const policy = tp && clusterPolicy(tp);
  if (policy) out.policy = policy;
  return out;
}

/**
 * GAMMA (GEP-1426, "Route types"): when both a GRPCRoute and an HTTPRoute attach to one Service, the
 * GRPCRoute wins and the HTTPRoutes are ignored for it (Linkerd does the same).
 */
export function compileRoutes(
  index: MeshIndex,
  svc: Service,
  httpInScope: readonly HTTPRoute[],
  grpcInScope: readonly GRPCRoute[],
): Route[] {
  const refs: RefContext = { services: index.services, grants: index.grants };
  const grpc = grpcInScope.length > 0 ? attachedGrpcRoutes(svc, grpcInScope, index.faults, refs) : [];
  const attached = grpc.length > 0 ? grpc : attachedRoutes(svc, httpInScope, index.faults, refs);
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

/** The outbound entry of `svc` for callers in `fromNamespace`, with the routes of their scope. */
export function outboundService(svc: Service, routes: Route[], fromNamespace: string): OutboundService {
  const port = svc.spec.ports?.[0];
  return {
    name: svc.metadata.name,
    namespace: svc.metadata.namespace,
    hosts: hostsOf(svc.metadata.name, svc.metadata.namespace, fromNamespace),
    port: port?.port ?? 0,
    protocol: port?.protocol ?? "http",
    ports: (svc.spec.ports ?? []).map((p) => servicePort(p)),
    routes,
  };
}

export function servicePort(p: ServicePort): ServicePortConfig {
  const out: ServicePortConfig = { port: p.port, protocol: p.protocol ?? DEFAULT_PROTOCOL };
  if (p.name !== undefined) out.name = p.name;
  return out;
}

/** Host names that reach a service from a proxy in `fromNamespace` (as Kubernetes DNS search would). */
export function hostsOf(name: string, ns: string, fromNamespace: string): string[] {
  const hosts = [`${name}.${ns}`, `${name}.${ns}.svc`, `${name}.${ns}.svc.cluster.local`];
  return ns === fromNamespace ? [name, ...hosts] : hosts;
}

export function splitCanonical(key: string): [string, string] {
  const dot = key.indexOf(".");
  return [key.slice(0, dot), key.slice(dot + 1)];
}

/** A workload is serving unless its sidecar says otherwise (starting, draining). */
function isServing(w: Workload): boolean {
  return (w.status as Partial<WorkloadStatus> | undefined)?.serving !== false;
}

/** Only an explicit "Unhealthy" counts: a workload without status (static, or not checked) is healthy. */
function isUnhealthy(w: Workload): boolean {
  return (w.status as Partial<WorkloadStatus> | undefined)?.health === "Unhealthy";
}
