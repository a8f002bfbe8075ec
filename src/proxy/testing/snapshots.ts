// Hand-built ProxySnapshots for tests: services with routes over clusters of endpoints.

import type {
  Cluster,
  Endpoint,
  InboundPort,
  OutboundService,
  ProxySnapshot,
  Route,
  ServicePortConfig,
} from "../../model/snapshot.ts";

export interface ServiceSpec {
  name: string;
  namespace?: string;
  port?: number;
  /** Declared ports (the first one is `port`); default: `port` alone, as http, when given. */
  ports?: ServicePortConfig[];
  routes?: Route[];
  /** Shorthand: one catch-all route over one cluster with these endpoints. */
  endpoints?: Partial<Endpoint>[];
}

export function endpoint(port: number, extra: Partial<Endpoint> = {}): Endpoint {
  return { address: "127.0.0.1", port, workload: `w-${port}`, labels: {}, ...extra };
}

export function cluster(
  name: string,
  service: string,
  endpoints: Partial<Endpoint>[],
  namespace = "default",
): Cluster {
  return {
    name,
    service,
    namespace,
    endpoints: endpoints.map((e) => endpoint(e.port ?? 0, e)),
  };
}

/** Builds a snapshot for proxy `web.default` with the given services and extra clusters. */
export function buildSnapshot(opts: {
  version?: string;
  services?: ServiceSpec[];
  clusters?: Cluster[];
  appPort?: number;
  /** The proxy's own service's ports → app ports (InboundConfig.ports). */
  inboundPorts?: InboundPort[];
  proxy?: { service: string; namespace: string; identity: string };
  mtlsMode?: "STRICT" | "PERMISSIVE";
}): ProxySnapshot {
  const clusters: Record<string, Cluster> = {};
  for (const c of opts.clusters ?? []) clusters[c.name] = c;
  const outbound: Record<string, OutboundService> = {};
  for (const s of opts.services ?? []) {
    const ns = s.namespace ?? "default";
    let routes = s.routes;
    if (routes === undefined) {
      const cname = `${s.name}.${ns}`;
      clusters[cname] ??= cluster(cname, s.name, s.endpoints ?? [], ns);
      routes = [{ name: "default", matches: [], backends: [{ cluster: cname, weight: 1 }] }];
    }
    outbound[`${s.name}.${ns}`] = {
      name: s.name,
      namespace: ns,
      hosts: [s.name, `${s.name}.${ns}`],
      port: s.ports?.[0]?.port ?? s.port ?? 0,
      protocol: s.ports?.[0]?.protocol ?? "http",
      ports: s.ports ?? (s.port ? [{ port: s.port, protocol: "http" }] : []),
      routes,
    };
  }
  const proxy = opts.proxy ?? {
    service: "web",
    namespace: "default",
    identity: "spiffe://weft.local/ns/default/sa/web",
  };
  return {
    version: opts.version ?? String(Math.random()),
    proxy: { ...proxy, workload: `${proxy.service}-1` },
    mesh: { trustDomain: "weft.local", mtlsMode: opts.mtlsMode ?? "STRICT" },
    inbound: { appAddress: "127.0.0.1", appPort: opts.appPort ?? 1, ports: opts.inboundPorts ?? [] },
    outbound,
    clusters,
  };
}
