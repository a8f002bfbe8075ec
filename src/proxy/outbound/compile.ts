// ProxySnapshot → the outbound listener's routing table, once per config change. Everything a
// request needs is resolved here: host → service, routes → compiled matchers, backends → weighted
// picker over clusters, cluster → balancer over endpoints, endpoint → its connection pool, and the
// metric handles for each (route, backend). Three kinds of target, as in linkerd2-proxy:
// logical (service + routes) → concrete (a cluster, balanced) → endpoint (one address, pooled).

import type { Cluster, OutboundService, ProxySnapshot } from "../../model/snapshot.ts";
import { createBalancer, type Balancer } from "../balancer/balancer.ts";
import { StatsByCode, type ProxyMetrics } from "../metrics/registry.ts";
import type { UpstreamPool, UpstreamPools } from "../transport/upstream-pools.ts";
import { WeightedPicker } from "./backend-picker.ts";
import { HostTable } from "./host-table.ts";
import { compileRouteMatches, type RequestView, type RouteMatcher } from "./route-match.ts";

export interface CompiledEndpoint {
  readonly pool: UpstreamPool;
  /** "reviews.default at 10.0.0.7:9080", for error details. */
  readonly label: string;
}

export interface CompiledCluster {
  readonly name: string;
  /** metrics' destination_service: "name.namespace". */
  readonly destination: string;
  readonly endpoints: Balancer<CompiledEndpoint>;
}

export interface CompiledBackend {
  readonly cluster: CompiledCluster;
  readonly stats: StatsByCode;
}

export interface CompiledRoute {
  readonly name: string;
  readonly matcher: RouteMatcher;
  readonly backends: WeightedPicker<CompiledBackend>;
  /** Local replies on this route before a backend is known (upstream_unavailable). */
  readonly stats: StatsByCode;
}

export interface CompiledService {
  /** "name.namespace". */
  readonly name: string;
  readonly routes: readonly CompiledRoute[];
  /** Local replies for this service when no route matched. */
  readonly stats: StatsByCode;
}

export interface OutboundTable {
  readonly version: string;
  readonly hosts: HostTable<CompiledService>;
  readonly services: ReadonlyMap<string, CompiledService>;
  /** The proxy's own service, "name.namespace": metrics' source_service. */
  readonly source: string;
  /** Local replies before a service is known (no_route for unknown hosts, bad requests). */
  readonly unknownStats: StatsByCode;
}

export function matchRoute(svc: CompiledService, r: RequestView): CompiledRoute | undefined {
  const routes = svc.routes;
  for (let i = 0; i < routes.length; i++) {
    const m = routes[i].matcher;
    if (m === undefined || m(r)) return routes[i];
  }
  return undefined;
}

/** Builds the table; gets (and marks) pools for every endpoint — the caller then calls pools.sync(). */
export function compileOutbound(
  s: ProxySnapshot,
  pools: UpstreamPools,
  metrics: ProxyMetrics,
): OutboundTable {
  const source = `${s.proxy.service}.${s.proxy.namespace}`;
  const clusters = new Map<string, CompiledCluster>();
  const clusterOf = (name: string): CompiledCluster | undefined => {
    let c = clusters.get(name);
    if (c === undefined) {
      const spec = s.clusters[name];
      if (spec === undefined) return undefined;
      clusters.set(name, (c = compileCluster(spec, pools)));
    }
    return c;
  };

  const services = new Map<string, CompiledService>();
  const entries: { service: OutboundService; value: CompiledService }[] = [];
  for (const [key, svc] of Object.entries(s.outbound)) {
    const name = `${svc.name}.${svc.namespace}`;
    const routes = svc.routes.map((r): CompiledRoute => {
      const backends = r.backends.map((b) => {
        const cluster = clusterOf(b.cluster);
        return {
          weight: cluster ? b.weight : 0,
          item: cluster && {
            cluster,
            stats: new StatsByCode(metrics, "outbound", source, cluster.destination, r.name),
          },
        };
      });
      return {
        name: r.name,
        matcher: compileRouteMatches(r.matches),
        backends: new WeightedPicker(
          backends.filter((b) => b.item !== undefined) as { item: CompiledBackend; weight: number }[],
        ),
        stats: new StatsByCode(metrics, "outbound", source, name, r.name),
      };
    });
    const compiled: CompiledService = {
      name,
      routes,
      stats: new StatsByCode(metrics, "outbound", source, name, ""),
    };
    services.set(key, compiled);
    services.set(name, compiled);
    entries.push({ service: svc, value: compiled });
  }
  return {
    version: s.version,
    hosts: HostTable.build(entries, s.proxy.namespace),
    services,
    source,
    unknownStats: new StatsByCode(metrics, "outbound", source, "unknown", ""),
  };
}

function compileCluster(c: Cluster, pools: UpstreamPools): CompiledCluster {
  const destination = `${c.service}.${c.namespace}`;
  const endpoints = c.endpoints.map((ep) => {
    const pool = pools.get({ address: ep.address, port: ep.port, identity: ep.identity });
    return { pool, label: `${destination} at ${pool.label}` };
  });
  return { name: c.name, destination, endpoints: createBalancer(endpoints) };
}
