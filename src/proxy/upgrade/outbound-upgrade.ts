// Upgrade requests (WebSocket, ...) at the outbound listener. The listener serves them like any
// request (listener.ts `serve`: not_ready, service from Host / authority / --upstream / a CONNECT
// tunnel, the port of a multi-port service, route match); at the matched route it hands them here:
//
//   the route's filters, the same classes as route-chain.ts composes, once per route:
//     redirect (answered) → backend (pickBackend: 500 invalid_backend, or none) → fault delay /
//     abort → request / response header modifiers (route's, then the backend's) → URL rewrite
//   → the terminal: attempt.ts' claim (maxRequests: an upgrade counts as a request in flight for its
//     whole life; pick; maxConnections — upgrades per endpoint, each holds one connection — checked
//     on the picked endpoint before it begins) → dedicated connection (mTLS with ALPN http/1.1 to a
//     sidecar, never a pooled or HTTP/2 one) → tunnel.ts; a connection that failed before anything
//     was written goes to another endpoint (attempt.ts' resend); end when the tunnel closes, with the
//     handshake's latency and outcome.
// Request events: the exchange ends at the 101 (status 101, the handshake's duration), so its attempt's
// attemptEnd comes later, when the tunnel closes.
// What does not apply to an upgrade: retries and hedging (a tunnel cannot be replayed) and mirrors
// (a byte stream cannot be copied to a second app). A route's timeouts bound the wait for the 101.

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Outcome } from "../balancer/endpoint-set.ts";
import { hashKeyOf } from "../balancer/hash-key.ts";
import { FaultFilter } from "../filters/fault/fault.ts";
import { compose, type Filter, type Next } from "../filters/filter.ts";
import {
  RequestHeaderModifierFilter,
  ResponseHeaderModifierFilter,
} from "../filters/header-modifier/header-modifier.ts";
import { RedirectFilter } from "../filters/redirect/redirect.ts";
import { UrlRewriteFilter } from "../filters/url-rewrite/url-rewrite.ts";
import { DST_PORT_HEADER } from "../http/dst-port.ts";
import { modifyHeaders } from "../http/header-list.ts";
import type { HttpEdge } from "../http/server-edge.ts";
import type { ProxyMetrics, StatsByCode } from "../metrics/registry.ts";
import type { Exchange } from "../pipeline/exchange.ts";
import { DEADLINE_HEADER } from "../pipeline/timeouts.ts";
import { claim, end, Refusal, resend, type Endpoint } from "../outbound/attempt.ts";
import type { ListenerDefaults } from "../outbound/engine.ts";
import type { CompiledRoute, OutboundTable } from "../outbound/compile.ts";
import { tunnelAuthorityOf } from "../outbound/connect-tunnel.ts";
import { outcomeOfReply, outcomeOfStatus } from "../outbound/outcomes.ts";
import { pickBackend } from "../outbound/route-chain.ts";
import { RouteContext, type RouteClock } from "../outbound/route-context.ts";
import { ConnectionCounters, createConnector } from "../transport/connector.ts";
import type { UpstreamPools } from "../transport/upstream-pools.ts";
import { DEFAULT_UPGRADE_IDLE_MS, UpgradeForward } from "./tunnel.ts";
import { Tunnels } from "./tunnels.ts";
import { UpgradeExchange } from "./upgrade-exchange.ts";
import { UpgradeStatsTable, type UpgradeStats } from "./upgrade-stats.ts";

const HTTPS_REFUSAL = "https:// through this proxy needs CONNECT, which is not supported; call http://";

export interface OutboundUpgradeOptions {
  metrics: ProxyMetrics;
  pools: UpstreamPools;
  /** The outbound listener's timeouts, as the attempt engine takes them. */
  defaults: ListenerDefaults;
  clock: RouteClock;
  /** Idle timeout of an upgraded connection (ms); default DEFAULT_UPGRADE_IDLE_MS. */
  idleMs?: number;
  connectTimeoutMs?: number;
  notReadyStats: StatsByCode;
  /** The listener's current table (it changes with the config). */
  table(): OutboundTable | undefined;
  /** The listener's protocol-neutral entry; it calls route() back at the matched route. */
  serve(x: Exchange): void;
}

/** One upgrade from its endpoint pick to the end of its tunnel. */
interface Upgrade {
  c: RouteContext;
  x: UpgradeExchange;
  forward: UpgradeForward;
  endpoint: Endpoint;
  headers: string[];
  path: string;
  responseHeadersMs: number;
  outcome: Outcome;
  latencyMs: number;
  resends: number;
}

/** The picked backend, as route-chain.ts' backend stage, for every route (plain ones too). */
const BACKEND: Filter<RouteContext> = {
  name: "backend",
  onRequest(c: RouteContext, next: Next<RouteContext>): void {
    const backend = pickBackend(c.x, c.route, c.service);
    if (backend === undefined) return;
    const cluster = backend.cluster;
    c.backend = backend;
    (c.x as UpgradeExchange).destination = cluster.destination;
    if (c.route.features !== undefined) c.counters = c.features.counters(cluster.destination);
    if (cluster.hashOn !== undefined) c.hashKey = hashKeyOf(cluster.hashOn, c.x, c.clientAddress);
    next.run(c);
  },
};

/** The backend's own header modifiers (Gateway API backendRefs[].filters), after the route's. */
const BACKEND_HEADERS: Filter<RouteContext> = {
  name: "backend-header-modifier",
  onRequest(c: RouteContext, next: Next<RouteContext>): void {
    const own = c.backend.filters;
    if (own?.requestHeaders !== undefined) modifyHeaders(c.x.headers, own.requestHeaders);
    if (own?.responseHeaders !== undefined) c.x.responseHeaders = own.responseHeaders;
    next.run(c);
  },
};

/** A route's chain for upgrades: route-chain.ts' filters minus replay buffer and mirrors. */
function upgradeChain(route: CompiledRoute, terminal: Next<RouteContext>): Next<RouteContext> {
  const f = route.features;
  const rf = f?.filters;
  if (f !== undefined && rf?.redirect !== undefined)
    return compose([new RedirectFilter<RouteContext>(rf.redirect, f.matchedPrefix)], terminal);
  const filters: Filter<RouteContext>[] = [BACKEND];
  if (f?.fault !== undefined) filters.push(new FaultFilter(f.fault));
  if (rf?.requestHeaders !== undefined) filters.push(new RequestHeaderModifierFilter(rf.requestHeaders));
  if (rf?.responseHeaders !== undefined) filters.push(new ResponseHeaderModifierFilter(rf.responseHeaders));
  if (f?.backendFilters) filters.push(BACKEND_HEADERS);
  if (f !== undefined && rf?.rewrite !== undefined)
    filters.push(new UrlRewriteFilter<RouteContext>(rf.rewrite, f.matchedPrefix));
  return compose(filters, terminal);
}

export class OutboundUpgrades {
  readonly tunnels = new Tunnels();
  readonly #o: OutboundUpgradeOptions;
  readonly #stats: UpgradeStatsTable;
  readonly #counters: ConnectionCounters;
  /** Upgraded connections per endpoint key, for maxConnections. */
  readonly #perEndpoint = new Map<string, number>();
  /** Each route's upgrade chain, composed on first use; routes are recompiled with the config. */
  readonly #chains = new WeakMap<CompiledRoute, Next<RouteContext>>();
  readonly #terminal: Next<RouteContext> = { run: (c) => this.#open(c) };

  constructor(o: OutboundUpgradeOptions) {
    this.#o = o;
    this.#stats = new UpgradeStatsTable(o.metrics, "outbound");
    this.#counters = new ConnectionCounters(o.metrics, "outbound");
  }

  /** The edge's 'upgrade' event: read like any request, then served by the listener. */
  accept(edge: HttpEdge, req: IncomingMessage, socket: Socket, head: Buffer): void {
    const t = this.#o.table();
    const x = new UpgradeExchange(
      req,
      socket,
      head,
      edge,
      t === undefined ? this.#o.notReadyStats : t.unknownStats,
      (u) => this.#statsOf(u.destination, u)?.outcome("refused"),
    );
    if (!x.readUpgrade(HTTPS_REFUSAL)) return;
    // Inside a CONNECT tunnel, the tunnel's authority decides where requests go.
    x.authority ??= tunnelAuthorityOf(socket);
    this.#o.serve(x);
  }

  /** Called by the listener's serve at the matched route. */
  route(x: UpgradeExchange, route: CompiledRoute, service: string, host: string): void {
    x.stats = route.stats;
    x.destination = service;
    let chain = this.#chains.get(route);
    if (chain === undefined) this.#chains.set(route, (chain = upgradeChain(route, this.#terminal)));
    chain.run(new RouteContext(x, route, service, host, this.#o.defaults, this.#o.clock));
  }

  #statsOf(destination: string, x: UpgradeExchange): UpgradeStats | undefined {
    const t = this.#o.table();
    return t === undefined ? undefined : this.#stats.get(t.version, t.source, destination, x.protocol);
  }

  /** The chain's terminal: circuit breaker, endpoint, dedicated connection. */
  #open(c: RouteContext): void {
    const x = c.x as UpgradeExchange;
    const cluster = c.backend.cluster;
    const endpoint = claim(x, cluster, c.hashKey, undefined, this.#endpointFull);
    if (endpoint instanceof Refusal) return x.reply(endpoint.code, endpoint.detail);
    const stats = this.#statsOf(cluster.destination, x) as UpgradeStats;
    x.takeOver();

    let responseHeadersMs = this.#o.defaults.timeouts.responseHeadersMs;
    x.timeoutLimit = this.#o.defaults.timeoutLimit;
    const f = c.route.features;
    const rt = f?.timeouts;
    const ms = Math.min(rt?.requestMs ?? Infinity, rt?.backendRequestMs ?? Infinity);
    if (ms !== Infinity) {
      responseHeadersMs = ms;
      x.timeoutLimit = rt?.requestMs === ms ? f!.timeoutLimits.request : f!.timeoutLimits.backendRequest;
    }
    const path = x.target; // after a URL rewrite
    const headers = c.upstreamHeaders();
    headers.push("connection", "upgrade", "upgrade", x.upgrade as string);
    const u: Upgrade = {
      c,
      x,
      forward: undefined as unknown as UpgradeForward,
      endpoint,
      headers,
      path,
      responseHeadersMs,
      outcome: "local",
      latencyMs: 0,
      resends: 0,
    };
    this.#took(u, endpoint);
    u.forward = new UpgradeForward(
      x,
      x.socket,
      x.clientHead,
      {
        notSent: (err) => this.#resend(u, err),
        answered: (status, failure) => {
          u.latencyMs = performance.now() - x.startedAt;
          u.outcome = failure === undefined ? outcomeOfStatus(status) : outcomeOfReply(failure);
        },
        closed: () => this.#release(u, u.outcome, u.latencyMs),
      },
      {
        idleMs: this.#o.idleMs ?? DEFAULT_UPGRADE_IDLE_MS,
        stats,
        tunnels: this.tunnels,
        setTimer: (fn, ms) => this.#o.clock.setTimeout(fn, ms),
        clearTimer: (timer) => this.#o.clock.clearTimeout(timer),
      },
    );
    u.forward.start(this.#target(u));
  }

  #target(u: Upgrade) {
    const ep = u.endpoint.value.pool.endpoint;
    const headers = [...u.headers];
    if (ep.identity !== undefined) {
      // Only a mesh endpoint (its sidecar) learns the port of a multi-port service.
      if (u.x.dstPort !== undefined) headers.push(DST_PORT_HEADER, u.x.dstPort);
      // The server sidecar bounds its wait for the app by what is left of the route's timeout.
      if (u.responseHeadersMs > 0) {
        const left = Math.max(1, Math.round(u.responseHeadersMs - (performance.now() - u.x.startedAt)));
        headers.push(DEADLINE_HEADER, String(left));
      }
    }
    return {
      connect: createConnector(ep, this.#o.pools.clientTls, this.#counters, this.#o.connectTimeoutMs),
      method: u.x.method,
      path: u.path,
      headers,
      responseHeadersMs: u.responseHeadersMs,
    };
  }

  /** claim's check: the picked endpoint already holds maxConnections upgraded connections. */
  readonly #endpointFull = (ep: Endpoint): Refusal | undefined => {
    const cluster = ep.value.cluster;
    const maxConnections = cluster.policy?.circuitBreaker?.maxConnections ?? 0;
    if (maxConnections === 0 || (this.#perEndpoint.get(ep.key) ?? 0) < maxConnections) return undefined;
    const t = this.#o.table();
    if (t !== undefined)
      this.#o.metrics.circuitOverflows.series(t.source, cluster.destination, "max_connections").inc();
    return new Refusal("circuit_open", `${ep.value.label}: ${maxConnections} upgraded connections open`);
  };

  /** The upgrade runs on `ep` (claimed): the endpoint's count of upgraded connections. */
  #took(u: Upgrade, ep: Endpoint): void {
    u.endpoint = ep;
    u.x.upstream = ep.value.label;
    this.#perEndpoint.set(ep.key, (this.#perEndpoint.get(ep.key) ?? 0) + 1);
  }

  /**
   * attempt.ts' end. The balancer learns the handshake's latency, not the tunnel's lifetime:
   * `startedAt` is shifted so that end() measures `latencyMs`.
   */
  #release(u: Upgrade, outcome: Outcome, latencyMs: number): void {
    end(u.endpoint, outcome, performance.now() - latencyMs, u.x);
    this.#untook(u.endpoint);
  }

  #untook(ep: Endpoint): void {
    const n = (this.#perEndpoint.get(ep.key) ?? 1) - 1;
    if (n === 0) this.#perEndpoint.delete(ep.key);
    else this.#perEndpoint.set(ep.key, n);
  }

  /** The connection failed before anything was written: another endpoint, if there is one. */
  #resend(u: Upgrade, err: Error): boolean {
    const x = u.x;
    const next = resend(x, u.endpoint, err, u.resends, u.c.hashKey, x.startedAt, u.c.backend.counters);
    if (next === undefined) return false;
    this.#untook(u.endpoint);
    u.resends++;
    this.#took(u, next);
    u.forward.start(this.#target(u));
    return true;
  }
}
