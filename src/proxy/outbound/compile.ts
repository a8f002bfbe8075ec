// ProxySnapshot → the outbound listener's routing table, once per config change. Everything a
// request needs is resolved here: host → service, routes → compiled matchers, backends → weighted
// picker over clusters, cluster → balancer over endpoints, endpoint → its connection pool, and the
// metric handles for each (route, backend). Three kinds of target, as in linkerd2-proxy:
// logical (service + routes) → concrete (a cluster, balanced) → endpoint (one address, pooled).

import type {
  Cluster,
  ClusterPolicy,
  FaultPolicy,
  HeaderModifier,
  HedgePolicy,
  OutboundService,
  ProxySnapshot,
  RetryPolicy,
  Route,
  RouteFilters,
  RouteTimeouts,
} from "../../model/snapshot.ts";
import { EndpointSet } from "../balancer/endpoint-set.ts";
import type { CounterSeries } from "../metrics/families.ts";
import { StatsByCode, type ProxyMetrics } from "../metrics/registry.ts";
import { DEFAULT_RETRY_BUDGET, RetryBudget } from "./retry.ts";
import type { UpstreamPool, UpstreamPools } from "../transport/upstream-pools.ts";
import { WeightedPicker } from "./backend-picker.ts";
import { HostTable } from "./host-table.ts";
import { composeHeaderModifiers } from "../http/header-list.ts";
import type { Next } from "../filters/filter.ts";
import type { RouteContext } from "./route-context.ts";
import { routeChain } from "./route-chain.ts";
import { compileRouteMatches, type RequestView, type RouteMatcher } from "./route-match.ts";

export interface CompiledEndpoint {
  readonly pool: UpstreamPool;
  /** "reviews.default at 10.0.0.7:9080", for error details. */
  readonly label: string;
  /** The cluster this endpoint belongs to (set once the cluster is built). */
  cluster: CompiledCluster;
}

/**
 * Per-destination state that outlives config changes (carried over by cluster name): in-flight
 * counts for the circuit breaker and the retry budget. Limits are 0 when unset. The overflow counters
 * are bound on first use, so a destination that never overflows costs no metric series.
 */
export class ClusterLimits {
  maxRequests = 0;
  maxRetries = 0;
  /** Attempts in flight to this destination (first attempts, retries, hedges). */
  active = 0;
  /** Retries and hedges in flight. */
  activeRetries = 0;
  #budget: RetryBudget | undefined;
  #budgetPercent: number = DEFAULT_RETRY_BUDGET.percent;
  #budgetMinPerSecond: number = DEFAULT_RETRY_BUDGET.minPerSecond;
  #overflow: ((limit: string) => CounterSeries) | undefined;
  #requests: CounterSeries | undefined;
  #retries: CounterSeries | undefined;
  #pending: CounterSeries | undefined;

  /** The destination's retry budget, made on first use (most destinations of a big config see no request). */
  get budget(): RetryBudget {
    return (this.#budget ??= new RetryBudget(this.#budgetPercent, this.#budgetMinPerSecond));
  }

  /** New settings start a new budget window; the same ones keep the current window. */
  setBudget(percent: number, minPerSecond: number): void {
    if (percent === this.#budgetPercent && minPerSecond === this.#budgetMinPerSecond) return;
    this.#budgetPercent = percent;
    this.#budgetMinPerSecond = minPerSecond;
    this.#budget = undefined;
  }

  bindMetrics(metrics: ProxyMetrics, source: string, destination: string): void {
    this.#overflow = (limit) => metrics.circuitOverflows.series(source, destination, limit);
    this.#requests = this.#retries = this.#pending = undefined;
  }
  get overflowRequests(): CounterSeries | undefined {
    return (this.#requests ??= this.#overflow?.("max_requests"));
  }
  get overflowRetries(): CounterSeries | undefined {
    return (this.#retries ??= this.#overflow?.("max_retries"));
  }
  get overflowPending(): CounterSeries | undefined {
    return (this.#pending ??= this.#overflow?.("max_pending_requests"));
  }
}

export interface CompiledCluster {
  readonly name: string;
  /** metrics' destination_service: "name.namespace". */
  readonly destination: string;
  readonly endpoints: EndpointSet<CompiledEndpoint>;
  readonly policy: ClusterPolicy | undefined;
  /** What consistent hashing hashes (RingHash / Maglev); undefined for other balancers. */
  readonly hashOn: { header?: string; cookie?: string; sourceAddress?: boolean } | undefined;
  readonly limits: ClusterLimits;
}

export interface CompiledBackend {
  readonly cluster: CompiledCluster;
  readonly stats: StatsByCode;
  /** The route's counters for this destination (bound on first use). */
  readonly counters: RouteCounters;
  /** This backend's own header modifiers (backendRefs[].filters); undefined when it has none. */
  readonly filters: BackendHeaderFilters | undefined;
  readonly invalid?: undefined;
}

/**
 * A backend whose reference the control plane could not resolve: it keeps its share of the route's
 * traffic, and the listener answers that share with 500 invalid_backend (Gateway API semantics).
 */
export interface InvalidBackend {
  /** Why, for the reply's detail: "Service ghost.shop does not exist". */
  readonly invalid: string;
  readonly cluster?: undefined;
}

/** Per-backend header modifiers, ready to apply after the route's own filters. */
export interface BackendHeaderFilters {
  readonly requestHeaders: HeaderModifier | undefined;
  /** The route's response modifier and then this backend's, composed into one. */
  readonly responseHeaders: HeaderModifier | undefined;
}

/** Metric handles of one (route, destination), bound on first use. */
export class RouteCounters {
  readonly #metrics: ProxyMetrics;
  readonly #labels: [string, string, string];
  readonly #cache = new Map<string, CounterSeries>();
  constructor(metrics: ProxyMetrics, source: string, destination: string, route: string) {
    this.#metrics = metrics;
    this.#labels = [source, destination, route];
  }
  retry(reason: string): CounterSeries {
    return this.#get("r" + reason, () => this.#metrics.retries.series(...this.#labels, reason));
  }
  budgetExhausted(): CounterSeries {
    return this.#get("b", () => this.#metrics.retryBudgetExhausted.series(...this.#labels));
  }
  hedge(outcome: "sent" | "won"): CounterSeries {
    return this.#get("h" + outcome, () => this.#metrics.hedges.series(...this.#labels, outcome));
  }
  mirrored(outcome: string): CounterSeries {
    return this.#get("m" + outcome, () => this.#metrics.mirrored.series(...this.#labels, outcome));
  }
  fault(kind: "delay" | "abort"): CounterSeries {
    return this.#get("f" + kind, () => this.#metrics.faults.series(...this.#labels, kind));
  }
  #get(key: string, make: () => CounterSeries): CounterSeries {
    let c = this.#cache.get(key);
    if (c === undefined) this.#cache.set(key, (c = make()));
    return c;
  }
}

export interface CompiledMirror {
  readonly cluster: CompiledCluster;
  /** 0..1 */
  readonly fraction: number;
  readonly counters: RouteCounters;
}

/**
 * What a route does beyond picking a backend. Undefined on routes that use none of it, so a plain
 * route takes the fast path and pays nothing for features it does not use.
 */
export interface RouteFeatures {
  readonly filters: RouteFilters | undefined;
  /** Some backend has header modifiers of its own (backendRefs[].filters), applied after the route's. */
  readonly backendFilters: boolean;
  readonly timeouts: RouteTimeouts | undefined;
  readonly retry: RetryPolicy | undefined;
  readonly hedge: HedgePolicy | undefined;
  readonly fault: FaultPolicy | undefined;
  readonly mirrors: readonly CompiledMirror[];
  /** The route's PathPrefix value (ReplacePrefixMatch rewrites replace it). */
  readonly matchedPrefix: string;
  /** Where the route's timeouts are set, named in a 504's detail. */
  readonly timeoutLimits: { readonly request: string; readonly backendRequest: string };
  /** Counters per destination ("name.namespace"), for retries, hedges and faults. */
  counters(destination: string): RouteCounters;
}

export interface CompiledRoute {
  readonly name: string;
  /** The service ports the route is limited to (parentRefs[].port / sectionName); undefined = all. */
  readonly ports: readonly number[] | undefined;
  readonly matcher: RouteMatcher;
  readonly backends: WeightedPicker<CompiledBackend | InvalidBackend>;
  /** Local replies on this route before a backend is known (upstream_unavailable). */
  readonly stats: StatsByCode;
  readonly features: RouteFeatures | undefined;
  /** The route's filter chain (route-chain.ts); undefined for plain routes (the fast path). */
  readonly chain: Next<RouteContext> | undefined;
}

export interface CompiledService {
  /** "name.namespace". */
  readonly name: string;
  readonly routes: readonly CompiledRoute[];
  /** The declared ports when there are several (a request then names its port); undefined otherwise. */
  readonly ports: readonly number[] | undefined;
  /** The first declared port (0 when none): requests without a port of their own target it. */
  readonly firstPort: number;
  /** Local replies for this service when no route matched. */
  readonly stats: StatsByCode;
  /**
   * Set by the listener on each request routed here; read and cleared by on-demand expiry
   * (../agent/subscriptions.ts). A plain field: no cost on the hot path beyond the write.
   */
  used: boolean;
}

export interface OutboundTable {
  readonly version: string;
  readonly hosts: HostTable<CompiledService>;
  readonly services: ReadonlyMap<string, CompiledService>;
  readonly clusters: ReadonlyMap<string, CompiledCluster>;
  /** The proxy's own service, "name.namespace": metrics' source_service. */
  readonly source: string;
  /** Local replies before a service is known (no_route for unknown hosts, bad requests). */
  readonly unknownStats: StatsByCode;
}

/** The first route that applies to `port` (0: any) and whose match accepts the request. */
export function matchRoute(svc: CompiledService, r: RequestView, port = 0): CompiledRoute | undefined {
  const routes = svc.routes;
  for (let i = 0; i < routes.length; i++) {
    const ports = routes[i].ports;
    if (ports !== undefined && port !== 0 && !ports.includes(port)) continue;
    const m = routes[i].matcher;
    if (m === undefined || m(r)) return routes[i];
  }
  return undefined;
}

/**
 * Builds the table; gets (and marks) pools for every endpoint — the caller then calls pools.sync().
 * State that must survive a config change (endpoint health, in-flight counts, retry budgets) is
 * carried over from `previous` by cluster name.
 */
export function compileOutbound(
  s: ProxySnapshot,
  pools: UpstreamPools,
  metrics: ProxyMetrics,
  previous?: OutboundTable,
): OutboundTable {
  const source = `${s.proxy.service}.${s.proxy.namespace}`;
  const clusters = new Map<string, CompiledCluster>();
  const clusterOf = (name: string): CompiledCluster | undefined => {
    let c = clusters.get(name);
    if (c === undefined) {
      const spec = s.clusters[name];
      if (spec === undefined) return undefined;
      const before = previous?.clusters.get(name);
      clusters.set(name, (c = compileCluster(spec, pools, metrics, source, s.proxy.zone, before)));
    }
    return c;
  };

  const services = new Map<string, CompiledService>();
  const entries: { service: OutboundService; value: CompiledService }[] = [];
  for (const [key, svc] of Object.entries(s.outbound)) {
    const name = `${svc.name}.${svc.namespace}`;
    const routes = svc.routes.map((r): CompiledRoute => {
      const backends = r.backends.map((b) => {
        if (b.invalid !== undefined)
          return { weight: b.weight, item: { invalid: b.invalid.message } as InvalidBackend };
        const cluster = clusterOf(b.cluster);
        return {
          weight: cluster ? b.weight : 0,
          item: cluster && {
            cluster,
            stats: new StatsByCode(metrics, "outbound", source, cluster.destination, r.name),
            counters: new RouteCounters(metrics, source, cluster.destination, r.name),
            filters: b.filters && {
              requestHeaders: b.filters.requestHeaders,
              responseHeaders: composeHeaderModifiers(r.filters?.responseHeaders, b.filters.responseHeaders),
            },
          },
        };
      });
      const features = compileFeatures(r, clusterOf, metrics, source);
      return {
        name: r.name,
        ports: r.ports,
        matcher: compileRouteMatches(r.matches),
        backends: new WeightedPicker(
          backends.filter((b) => b.item !== undefined) as {
            item: CompiledBackend | InvalidBackend;
            weight: number;
          }[],
        ),
        stats: new StatsByCode(metrics, "outbound", source, name, r.name),
        features,
        chain: features === undefined ? undefined : routeChain(features),
      };
    });
    const declared = (svc.ports ?? []).map((p) => p.port);
    const compiled: CompiledService = {
      name,
      routes,
      ports: declared.length > 1 ? declared : undefined,
      firstPort: svc.port,
      stats: new StatsByCode(metrics, "outbound", source, name, ""),
      used: previous?.services.get(name)?.used ?? false,
    };
    services.set(key, compiled);
    services.set(name, compiled);
    entries.push({ service: svc, value: compiled });
  }
  // Destinations that left the config take their metric series with them.
  const live = new Set<string>(["unknown"]);
  for (const c of clusters.values()) live.add(c.destination);
  for (const svc of services.values()) live.add(svc.name);
  metrics.retainDestinations(live);
  return {
    version: s.version,
    hosts: HostTable.build(entries, s.proxy.namespace),
    services,
    clusters,
    source,
    unknownStats: new StatsByCode(metrics, "outbound", source, "unknown", ""),
  };
}

/** "HTTPRoute default/reviews rule 0" from a compiled route name ("namespace/route/rule"). */
export function routeSource(name: string): string {
  const parts = name.split("/");
  return parts.length === 3 ? `HTTPRoute ${parts[0]}/${parts[1]} rule ${parts[2]}` : `route ${name}`;
}

function compileFeatures(
  r: Route,
  clusterOf: (name: string) => CompiledCluster | undefined,
  metrics: ProxyMetrics,
  source: string,
): RouteFeatures | undefined {
  const backendFilters = r.backends.some((b) => b.filters !== undefined);
  if (!r.filters && !r.timeouts && !r.retry && !r.hedge && !r.fault && !r.mirrors?.length && !backendFilters)
    return undefined;
  const byDestination = new Map<string, RouteCounters>();
  const counters = (destination: string): RouteCounters => {
    let c = byDestination.get(destination);
    if (c === undefined)
      byDestination.set(destination, (c = new RouteCounters(metrics, source, destination, r.name)));
    return c;
  };
  const mirrors: CompiledMirror[] = [];
  for (const m of r.mirrors ?? []) {
    const cluster = clusterOf(m.cluster);
    if (cluster === undefined || !(m.percent > 0)) continue;
    mirrors.push({
      cluster,
      fraction: Math.min(1, m.percent / 100),
      counters: counters(cluster.destination),
    });
  }
  const path = r.matches[0]?.path;
  return {
    filters: r.filters,
    backendFilters,
    timeouts: r.timeouts,
    retry: r.retry,
    hedge: r.hedge,
    fault: r.fault,
    mirrors,
    matchedPrefix: path?.type === "PathPrefix" ? path.value : "/",
    timeoutLimits: {
      request: `${routeSource(r.name)} timeouts.request`,
      backendRequest: `${routeSource(r.name)} timeouts.backendRequest`,
    },
    counters,
  };
}

function compileCluster(
  c: Cluster,
  pools: UpstreamPools,
  metrics: ProxyMetrics,
  source: string,
  zone: string | undefined,
  before: CompiledCluster | undefined,
): CompiledCluster {
  const destination = `${c.service}.${c.namespace}`;
  const policy = c.policy;
  const cb = policy?.circuitBreaker;
  const inputs = c.endpoints.map((ep) => {
    const pool = pools.get({ address: ep.address, port: ep.port, identity: ep.identity });
    pool.setLimits?.(cb?.maxConnections ?? 0, cb?.maxPendingRequests ?? 0);
    const value = { pool, label: `${destination} at ${pool.label}` } as CompiledEndpoint;
    return { value, key: pool.key, zone: ep.zone };
  });
  const ejections = (reason: string) => metrics.ejections.series(destination, reason);
  let ejectedGauge: CounterSeries | undefined;
  const ejected = () => (ejectedGauge ??= metrics.ejectedEndpoints.series(destination));
  const endpoints = new EndpointSet<CompiledEndpoint>(inputs, policy, {
    localZone: zone,
    events: {
      onEject: (_key, reason) => {
        ejections(reason).inc();
        ejected().inc();
      },
      onReturn: () => ejected().dec(),
    },
  });
  if (before !== undefined) endpoints.inheritFrom(before.endpoints);
  // Carry in-flight counts and the budget's window over; take the new limits.
  const limits = before?.limits ?? new ClusterLimits();
  limits.maxRequests = cb?.maxRequests ?? 0;
  limits.maxRetries = cb?.maxRetries ?? 0;
  const rb = policy?.retryBudget ?? DEFAULT_RETRY_BUDGET;
  limits.setBudget(rb.percent, rb.minPerSecond);
  limits.bindMetrics(metrics, source, destination);
  const lb = policy?.loadBalancer;
  const hashOn = lb && (lb.type === "RingHash" || lb.type === "Maglev") ? lb.hashOn : undefined;
  const cluster: CompiledCluster = { name: c.name, destination, endpoints, policy, hashOn, limits };
  for (const i of inputs) i.value.cluster = cluster;
  return cluster;
}
