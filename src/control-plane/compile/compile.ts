// The compiler: a pure function from resources + registry to one proxy's config snapshot.
// Same input, same output (and the same version string), so a snapshot that did not change is never
// pushed again and a reconnecting proxy that already runs it gets nothing new.

import { createHash } from "node:crypto";
import {
  DEFAULT_TRUST_DOMAIN,
  SERVICE_LABEL,
  type HTTPRoute,
  type Mesh,
  type Service,
  type Workload,
} from "../../model/resources.ts";
import type { Cluster, Endpoint, OutboundService, ProxySnapshot, Route } from "../../model/snapshot.ts";
import { attachedRoutes } from "./routes.ts";

export interface MeshState {
  mesh?: Mesh;
  services: Service[];
  workloads: Workload[];
  routes: HTTPRoute[];
}

export interface ProxyRequest {
  /** The proxy's own registered Workload. */
  workload: Workload;
  /** Where its app listens. */
  appPort: number;
  /** Services ("name" or "name.namespace") this proxy reaches; undefined = every service in the mesh. */
  reach?: string[];
}

export function compileSnapshot(state: MeshState, proxy: ProxyRequest): ProxySnapshot {
  const self = proxy.workload;
  const namespace = self.metadata.namespace;
  const services = serviceIndex(state);
  const reach = proxy.reach && new Set(proxy.reach.map((r) => canonical(r, namespace)));

  const outbound: Record<string, OutboundService> = {};
  const clusters: Record<string, Cluster> = {};
  for (const [key, svc] of [...services.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (reach && !reach.has(key)) continue;
    const routes = routesFor(svc, state.routes);
    for (const r of routes)
      for (const b of r.backends) clusters[b.cluster] ??= cluster(b.cluster, services, state);
    const port = svc.spec.ports?.[0];
    outbound[key] = {
      name: svc.metadata.name,
      namespace: svc.metadata.namespace,
      hosts: hostsOf(svc.metadata.name, svc.metadata.namespace, namespace),
      port: port?.port ?? 0,
      protocol: port?.protocol ?? "http",
      routes,
    };
  }

  const body = {
    proxy: {
      service: self.spec.service,
      namespace,
      identity: self.spec.identity ?? "",
      workload: self.metadata.name,
    },
    mesh: {
      trustDomain: state.mesh?.spec.trustDomain ?? DEFAULT_TRUST_DOMAIN,
      mtlsMode: state.mesh?.spec.mtls?.mode ?? "STRICT",
    },
    inbound: { appAddress: "127.0.0.1", appPort: proxy.appPort },
    outbound,
    clusters,
  };
  return { version: versionOf(body), ...body };
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

function routesFor(svc: Service, all: HTTPRoute[]): Route[] {
  const attached = attachedRoutes(svc, all);
  if (attached.length > 0) return attached;
  const self = `${svc.metadata.name}.${svc.metadata.namespace}`;
  return [{ name: "default", matches: [{}], backends: [{ cluster: self, weight: 1 }] }];
}

function cluster(name: string, services: Map<string, Service>, state: MeshState): Cluster {
  const svc = services.get(name);
  const [svcName, ns] = splitCanonical(name);
  const endpoints: Endpoint[] = [];
  if (svc) {
    const selector = svc.spec.selector ?? { [SERVICE_LABEL]: svcName };
    for (const w of state.workloads) {
      if (w.metadata.namespace !== ns) continue;
      const labels: Record<string, string> = { ...w.metadata.labels, [SERVICE_LABEL]: w.spec.service };
      if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) continue;
      const ep: Endpoint = { address: w.spec.address, port: w.spec.port, workload: w.metadata.name, labels };
      if (w.spec.identity) ep.identity = w.spec.identity;
      if (w.spec.zone) ep.zone = w.spec.zone;
      endpoints.push(ep);
    }
    endpoints.sort((a, b) => (a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : 0));
  }
  return { name, service: svcName, namespace: ns, endpoints };
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
