// Upgrade requests (WebSocket, ...) at the outbound listener: routed like any request, then carried
// on a dedicated connection (tunnel.ts). Origin-form on an --upstream port or with a Host naming a
// mesh service, absolute-form from an HTTP_PROXY client, or inside a CONNECT tunnel to a service.
//
//   request target → head checks (a body → 400) → service → route (first match)
//   → redirect (answered) → fault delay → fault abort (answered) → header / URL rewrites
//   → backend (weighted) → circuit breaker (maxRequests: the upgrade counts as a request in flight
//     for its whole life; maxConnections: upgrades per endpoint, each holds one connection)
//   → endpoint (the cluster's balancer: started now, ended when the tunnel closes, with the
//     handshake's latency and outcome) → dedicated connection (mTLS with ALPN http/1.1 to a sidecar)
//     → tunnel.ts. A connection that failed before anything was written goes to another endpoint.
// What does not apply to an upgrade: retries and hedging (a tunnel cannot be replayed) and mirrors
// (a byte stream cannot be copied to a second app). A route's timeouts bound the wait for the 101.

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { EndpointHandle, Outcome } from "../balancer/endpoint-set.ts";
import { hashKeyOf } from "../balancer/hash-key.ts";
import type { LocalReplyCode } from "../errors.ts";
import { DEADLINE_HEADER, Exchange, type UpstreamTimeouts } from "../http/exchange.ts";
import { checkRequestHead, scanRequestHeaders } from "../http/request-head.ts";
import { parseAbsoluteForm } from "../http/request-target.ts";
import type { HttpEdge } from "../http/server-edge.ts";
import type { ProxyMetrics, StatsByCode } from "../metrics/registry.ts";
import {
  matchRoute,
  type CompiledCluster,
  type CompiledEndpoint,
  type CompiledService,
  type OutboundTable,
} from "../outbound/compile.ts";
import { tunnelAuthorityOf } from "../outbound/connect-tunnel.ts";
import { modifyHeaders, rewritePath, splitTarget } from "../outbound/filters.ts";
import { notSentOutcome, outcomeOfReply, outcomeOfStatus } from "../outbound/outcomes.ts";
import { MAX_RESENDS } from "../outbound/retry.ts";
import { answerRedirect, type RouteClock } from "../outbound/routed-request.ts";
import { ConnectionCounters, createConnector } from "../transport/connector.ts";
import type { UpstreamPools } from "../transport/upstream-pools.ts";
import { DEFAULT_UPGRADE_IDLE_MS, UpgradeForward, clientResponse, closeAfterResponse } from "./tunnel.ts";
import { Tunnels } from "./tunnels.ts";
import { protocolOf, upgradeBodyRefusal } from "./upgrade-head.ts";
import { UpgradeStatsTable, type UpgradeStats } from "./upgrade-stats.ts";

export interface OutboundUpgradeOptions {
  metrics: ProxyMetrics;
  pools: UpstreamPools;
  /** The service of an --upstream port. */
  upstream: string | undefined;
  timeouts: UpstreamTimeouts;
  timeoutLimit: string | undefined;
  clock: RouteClock;
  /** Idle timeout of an upgraded connection (ms); default DEFAULT_UPGRADE_IDLE_MS. */
  idleMs?: number;
  connectTimeoutMs?: number;
  notReadyStats: StatsByCode;
  /** The listener's current table and fixed service (they change with the config). */
  routing(): { table: OutboundTable | undefined; fixed: CompiledService | undefined };
}

/** One upgrade between routing and the end of its tunnel. */
interface Upgrade {
  x: Exchange;
  socket: Socket;
  forward: UpgradeForward | undefined;
  cluster: CompiledCluster;
  endpoint: EndpointHandle<CompiledEndpoint>;
  host: string;
  path: string;
  headers: string[];
  responseHeadersMs: number;
  stats: UpgradeStats;
  outcome: Outcome;
  latencyMs: number;
  resends: number;
  hashKey: string | undefined;
}

export class OutboundUpgrades {
  readonly tunnels = new Tunnels();
  readonly #o: OutboundUpgradeOptions;
  readonly #stats: UpgradeStatsTable;
  readonly #counters: ConnectionCounters;
  /** Upgraded connections per endpoint key, for maxConnections. */
  readonly #perEndpoint = new Map<string, number>();

  constructor(o: OutboundUpgradeOptions) {
    this.#o = o;
    this.#stats = new UpgradeStatsTable(o.metrics, "outbound");
    this.#counters = new ConnectionCounters(o.metrics, "outbound");
  }

  handle(edge: HttpEdge, req: IncomingMessage, socket: Socket, head: Buffer): void {
    const { table: t, fixed } = this.#o.routing();
    const res = clientResponse(req, socket);
    const x = new Exchange(req, res, edge, t === undefined ? this.#o.notReadyStats : t.unknownStats);
    const protocol = protocolOf(req.headers.upgrade);
    const refuse = (dest: string, code: LocalReplyCode, detail: string, status?: number) => {
      if (t !== undefined) this.#stats.get(t.version, t.source, dest, protocol).outcome("refused");
      x.reply(code, detail, true, status);
      closeAfterResponse(res, socket);
    };

    const url = req.url as string;
    let authority: string | undefined;
    if (url.charCodeAt(0) === 47 /* / */) x.target = url;
    else {
      const abs = parseAbsoluteForm(url);
      if ("error" in abs) return refuse("unknown", "bad_request", "malformed request target");
      authority = abs.authority;
      x.target = abs.target;
    }
    scanRequestHeaders(req.rawHeaders, x.headers, x);
    const bad = checkRequestHead(req, x, authority !== undefined) ?? upgradeBodyRefusal(x);
    if (bad !== undefined) return refuse("unknown", "bad_request", bad);
    authority ??= tunnelAuthorityOf(socket);
    if (t === undefined)
      return refuse("unknown", "not_ready", "the proxy has no config from the control plane yet");

    const host = authority ?? (x.host as string);
    const svc = this.#o.upstream === undefined ? t.hosts.get(host) : fixed;
    if (svc === undefined) {
      const detail =
        this.#o.upstream === undefined
          ? t.hosts.explainMiss(host)
          : `upstream service ${JSON.stringify(this.#o.upstream)} is not in this proxy's config`;
      return refuse("unknown", "no_route", detail);
    }
    x.stats = svc.stats;
    const route = matchRoute(svc, x);
    if (route === undefined)
      return refuse(svc.name, "no_route", `no route of ${svc.name} matches ${req.method} ${x.path}`);
    x.stats = route.stats;
    const f = route.features;
    const redirect = f?.filters?.redirect;
    if (redirect !== undefined) {
      this.#stats.get(t.version, t.source, svc.name, protocol).outcome("refused");
      answerRedirect(x, redirect, f!.matchedPrefix, host);
      return closeAfterResponse(res, socket);
    }
    const backend = route.backends.pick();
    if (backend === undefined)
      return refuse(
        svc.name,
        "upstream_unavailable",
        `route ${route.name} of ${svc.name} has no backend with weight > 0`,
      );
    x.stats = backend.stats;
    const cluster = backend.cluster;
    const dest = cluster.destination;

    let path = x.target;
    let upstreamHost = host;
    let responseHeadersMs = this.#o.timeouts.responseHeadersMs;
    x.timeoutLimit = this.#o.timeoutLimit;
    const filters = f?.filters;
    if (filters?.requestHeaders !== undefined) modifyHeaders(x.headers, filters.requestHeaders);
    if (filters?.responseHeaders !== undefined) x.responseHeaders = filters.responseHeaders;
    if (filters?.rewrite?.hostname !== undefined) upstreamHost = filters.rewrite.hostname;
    if (filters?.rewrite?.path !== undefined) {
      const [p, q] = splitTarget(x.target);
      path = rewritePath(p, filters.rewrite.path, f!.matchedPrefix) + q;
    }
    const rt = f?.timeouts;
    const ms = Math.min(rt?.requestMs ?? Infinity, rt?.backendRequestMs ?? Infinity);
    if (ms !== Infinity) {
      responseHeadersMs = ms;
      x.timeoutLimit = rt?.requestMs === ms ? f!.timeoutLimits.request : f!.timeoutLimits.backendRequest;
    }
    const go = () => {
      const abort = f?.fault?.abort;
      if (abort !== undefined && this.#o.clock.random() * 100 < abort.percent) {
        f!.counters(dest).fault("abort").inc();
        return refuse(dest, "fault_injected", `fault injected by route ${route.name}`, abort.status);
      }
      this.#continueRoute(x, socket, head, cluster, upstreamHost, path, responseHeadersMs, protocol, t);
    };
    const delay = f?.fault?.delay;
    if (delay === undefined || this.#o.clock.random() * 100 >= delay.percent) return go();
    // Delayed while the client waits for its 101; its connection is not read meanwhile.
    f!.counters(dest).fault("delay").inc();
    this.#o.clock.setTimeout(() => {
      if (!socket.destroyed) go();
      else x.abandon(0); // the client left during the delay
    }, delay.ms);
  }

  #continueRoute(
    x: Exchange,
    socket: Socket,
    head: Buffer,
    cluster: CompiledCluster,
    host: string,
    path: string,
    responseHeadersMs: number,
    protocol: ReturnType<typeof protocolOf>,
    t: OutboundTable,
  ): void {
    const stats = this.#stats.get(t.version, t.source, cluster.destination, protocol);
    const refuse = (code: LocalReplyCode, detail: string) => {
      stats.outcome("refused");
      x.reply(code, detail, true);
      closeAfterResponse(x.res, socket);
    };
    const limits = cluster.limits;
    if (limits.maxRequests > 0 && limits.active >= limits.maxRequests) {
      limits.overflowRequests?.inc();
      return refuse(
        "circuit_open",
        `${cluster.destination}: ${limits.maxRequests} requests already in flight`,
      );
    }
    const clientAddress = x.req.socket?.remoteAddress;
    const hashKey = cluster.hashOn === undefined ? undefined : hashKeyOf(cluster.hashOn, x, clientAddress);
    const endpoint = cluster.endpoints.pick(hashKey);
    if (endpoint === undefined)
      return refuse(
        "upstream_unavailable",
        `${cluster.destination} has no endpoints (cluster ${cluster.name})`,
      );
    const maxConnections = cluster.policy?.circuitBreaker?.maxConnections ?? 0;
    if (maxConnections > 0 && (this.#perEndpoint.get(endpoint.key) ?? 0) >= maxConnections) {
      this.#o.metrics.circuitOverflows.series(t.source, cluster.destination, "max_connections").inc();
      return refuse("circuit_open", `${endpoint.value.label}: ${maxConnections} upgraded connections open`);
    }
    const headers = x.hopHeaders({ host, clientAddress, proto: "http" });
    headers.push("connection", "upgrade", "upgrade", x.upgrade as string);
    const u: Upgrade = {
      x,
      socket,
      forward: undefined,
      cluster,
      endpoint,
      host,
      path,
      headers,
      responseHeadersMs,
      stats,
      outcome: "local",
      latencyMs: 0,
      resends: 0,
      hashKey,
    };
    limits.active++;
    this.#begin(u, endpoint);
    u.forward = new UpgradeForward(
      x,
      socket,
      head,
      {
        notSent: (err) => this.#resend(u, err),
        answered: (status, failure) => {
          u.latencyMs = performance.now() - x.startedAt;
          u.outcome = failure === undefined ? outcomeOfStatus(status) : outcomeOfReply(failure);
        },
        closed: () => this.#end(u),
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
    // The server sidecar bounds its wait for the app by what is left of the route's timeout.
    if (ep.identity !== undefined && u.responseHeadersMs > 0) {
      const left = Math.max(1, Math.round(u.responseHeadersMs - (performance.now() - u.x.startedAt)));
      headers.push(DEADLINE_HEADER, String(left));
    }
    return {
      connect: createConnector(ep, this.#o.pools.clientTls, this.#counters, this.#o.connectTimeoutMs),
      method: u.x.method,
      path: u.path,
      headers,
      responseHeadersMs: u.responseHeadersMs,
    };
  }

  #begin(u: Upgrade, ep: EndpointHandle<CompiledEndpoint>): void {
    u.endpoint = ep;
    u.x.upstream = ep.value.label;
    u.cluster.endpoints.start(ep);
    this.#perEndpoint.set(ep.key, (this.#perEndpoint.get(ep.key) ?? 0) + 1);
  }

  #release(u: Upgrade, outcome: Outcome, latencyMs: number): void {
    const ep = u.endpoint;
    u.cluster.endpoints.end(ep, outcome, latencyMs);
    const n = (this.#perEndpoint.get(ep.key) ?? 1) - 1;
    if (n === 0) this.#perEndpoint.delete(ep.key);
    else this.#perEndpoint.set(ep.key, n);
  }

  /** The connection failed before anything was written: another endpoint, if there is one. */
  #resend(u: Upgrade, err: Error): boolean {
    const set = u.cluster.endpoints;
    if (u.resends >= Math.min(MAX_RESENDS, set.size - 1)) return false;
    const outcome = notSentOutcome(err);
    if (outcome === undefined) return false;
    const next = set.pick(u.hashKey, u.endpoint);
    if (next === undefined || next.key === u.endpoint.key) return false;
    this.#release(u, outcome, performance.now() - u.x.startedAt);
    u.resends++;
    this.#begin(u, next);
    u.forward?.start(this.#target(u));
    return true;
  }

  #end(u: Upgrade): void {
    u.cluster.limits.active--;
    this.#release(u, u.outcome, u.latencyMs);
  }
}
