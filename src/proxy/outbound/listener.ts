// The outbound listener: plain HTTP on loopback, where apps point HTTP_PROXY. A request goes
// top-down through: request target (absolute-form, origin-form, or inside a CONNECT tunnel to a
// mesh service — see connect-tunnel.ts) → head checks → service (Host / authority) →
// route (first match) → backend (weighted) → endpoint (the cluster's balancer, ../balancer/) →
// forward on that endpoint's pool (mTLS when the endpoint has an identity). A route with filters,
// faults, mirrors, timeouts, retries or hedging goes through routed-request.ts instead of the plain
// forward. Every "no" on the way is a local reply (errors.ts). The routing table is compiled once
// per config change (compile.ts); a request only looks things up.
// A request that never left the proxy (connect refused or timed out, TLS handshake failed, a
// keep-alive connection found closed before anything was written: outcomes.ts' notSentOutcome) goes to
// another endpoint at once, on every route and with no retry policy: it cannot have reached an app.
// At most MAX_RESENDS times, and never to the endpoint that just failed (which is in connect
// backoff from then on, see ../balancer/endpoint-set.ts).

import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import {
  DEFAULT_TIMEOUT_LIMIT,
  DEFAULT_TIMEOUTS,
  Exchange,
  type UpstreamTimeouts,
} from "../http/exchange.ts";
import { ListenerLifecycle, type ProxyListener } from "../http/listener-lifecycle.ts";
import { LocalReplies } from "../http/local-reply.ts";
import { checkRequestHead, scanRequestHeaders } from "../http/request-head.ts";
import { parseAbsoluteForm } from "../http/request-target.ts";
import { HttpEdge, type EdgeLimits } from "../http/server-edge.ts";
import { StatsByCode, type ProxyMetrics } from "../metrics/registry.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { UpstreamPools, type PoolOptions } from "../transport/upstream-pools.ts";
import type { LocalReplyCode } from "../errors.ts";
import type { EndpointDescription, EndpointHandle } from "../balancer/endpoint-set.ts";
import { hashKeyOf } from "../balancer/hash-key.ts";
import {
  compileOutbound,
  matchRoute,
  type CompiledBackend,
  type CompiledEndpoint,
  type CompiledService,
  type OutboundTable,
} from "./compile.ts";
import { notSentOutcome, outcomeOfReply, outcomeOfStatus } from "./outcomes.ts";
import { MAX_RESENDS } from "./retry.ts";
import { answerRedirect, REAL_CLOCK, runRoute, type RouteClock } from "./routed-request.ts";
import { acceptConnect, tunnelAuthorityOf } from "./connect-tunnel.ts";
import { OutboundUpgrades } from "../upgrade/outbound-upgrade.ts";
import { isTunnelUpgrade } from "../upgrade/upgrade-head.ts";

export interface OutboundListenerOptions {
  config: Source<ProxySnapshot>;
  tls: Source<TlsMaterial>;
  metrics: ProxyMetrics;
  /** Fixed service for an --upstream port: every request goes to it regardless of Host. */
  upstream?: string;
  limits?: EdgeLimits;
  timeouts?: Partial<UpstreamTimeouts>;
  pool?: PoolOptions;
  /** Where config problems are reported (a snapshot that does not compile keeps the previous one). */
  log?: (msg: string) => void;
  /** Timers and randomness for routes with faults, retries, hedging and timeouts (tests inject them). */
  clock?: RouteClock;
  /** Idle timeout of upgraded (WebSocket, ...) connections, ms; default 1 h (../upgrade/tunnel.ts). */
  upgradeIdleTimeoutMs?: number;
}

/** One destination as the admin port's /clusters shows it. */
export interface ClusterDescription {
  name: string;
  destination: string;
  loadBalancer: string;
  /** Attempts in flight to the destination (circuit breaker's maxRequests counts these). */
  active: number;
  endpoints: EndpointDescription[];
}

export interface OutboundListener extends ProxyListener {
  /** The compiled routing table in use; undefined until the first snapshot. */
  readonly table: OutboundTable | undefined;
  readonly pools: UpstreamPools;
  /** Every destination's endpoints with their load, ejections and health, for /clusters. */
  describeClusters(): ClusterDescription[];
}

class Outbound {
  table: OutboundTable | undefined;
  fixed: CompiledService | undefined;
  readonly edge: HttpEdge;
  readonly pools: UpstreamPools;
  readonly lifecycle: ListenerLifecycle;
  readonly upgrades: OutboundUpgrades;
  readonly #opts: OutboundListenerOptions;
  readonly #timeouts: UpstreamTimeouts;
  /** Named in a 504's detail when the default response-headers timeout fires. */
  readonly #timeoutLimit: string | undefined;
  readonly #clock: RouteClock;
  readonly #notReadyStats: StatsByCode;
  readonly #unsubscribe: () => void;

  constructor(opts: OutboundListenerOptions) {
    this.#opts = opts;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.#timeoutLimit = this.#timeouts.responseHeadersMs > 0 ? DEFAULT_TIMEOUT_LIMIT : undefined;
    this.#clock = opts.clock ?? REAL_CLOCK;
    this.#notReadyStats = new StatsByCode(opts.metrics, "outbound", "unknown", "unknown", "");
    this.pools = new UpstreamPools({
      tls: opts.tls,
      metrics: opts.metrics,
      direction: "outbound",
      ...opts.pool,
    });
    // Upgrade requests (WebSocket, ...) are routed and tunnelled by ../upgrade/.
    this.upgrades = new OutboundUpgrades({
      metrics: opts.metrics,
      pools: this.pools,
      upstream: opts.upstream,
      timeouts: this.#timeouts,
      timeoutLimit: this.#timeoutLimit,
      clock: this.#clock,
      idleMs: opts.upgradeIdleTimeoutMs,
      connectTimeoutMs: opts.pool?.connectTimeoutMs,
      notReadyStats: this.#notReadyStats,
      routing: () => this,
    });
    this.edge = new HttpEdge({
      replies: new LocalReplies(opts.metrics, "outbound"),
      handler: (req, res) => this.handle(req, res),
      onUpgrade: (req, socket, head) => this.upgrades.handle(this.edge, req, socket, head),
      isUpgrade: isTunnelUpgrade,
      onConnect: (req, socket, head) =>
        acceptConnect(this.edge, req, socket, head, (a) => this.#checkTunnel(a)),
      ...opts.limits,
    });
    this.lifecycle = new ListenerLifecycle(this.edge.server, [this.edge], opts.metrics, "outbound");
    const current = opts.config.current();
    if (current) this.apply(current);
    this.#unsubscribe = opts.config.subscribe((s) => this.apply(s));
  }

  apply(snapshot: ProxySnapshot): void {
    if (snapshot.version === this.table?.version) return;
    let table: OutboundTable;
    try {
      table = compileOutbound(snapshot, this.pools, this.#opts.metrics, this.table);
    } catch (err) {
      this.#opts.log?.(`outbound: snapshot ${snapshot.version} not applied: ${(err as Error).message}`);
      return;
    }
    this.table = table;
    this.fixed =
      this.#opts.upstream === undefined
        ? undefined
        : (table.services.get(this.#opts.upstream) ?? table.hosts.get(this.#opts.upstream));
    this.pools.sync();
    this.#opts.metrics.configUpdates.series("outbound").value++;
  }

  /** A CONNECT authority must name a mesh service (or the fixed one of an --upstream port). */
  #checkTunnel(authority: string): [LocalReplyCode, string] | undefined {
    const t = this.table;
    if (t === undefined) return ["not_ready", "the proxy has no config from the control plane yet"];
    if (this.#opts.upstream !== undefined || t.hosts.get(authority) !== undefined) return undefined;
    return ["no_route", t.hosts.explainMiss(authority)];
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const t = this.table;
    const x = new Exchange(req, res, this.edge, t === undefined ? this.#notReadyStats : t.unknownStats);

    // Request target: origin-form, or absolute-form from an HTTP_PROXY client.
    const url = req.url as string;
    let authority: string | undefined;
    if (url.charCodeAt(0) === 47 /* / */) {
      x.target = url;
    } else {
      const abs = parseAbsoluteForm(url);
      if ("error" in abs) {
        if (abs.error === "https")
          return x.reply(
            "unsupported",
            "https:// through this proxy needs CONNECT, which is not supported; call http://",
          );
        return x.reply("bad_request", "malformed request target", true);
      }
      authority = abs.authority;
      x.target = abs.target;
    }

    scanRequestHeaders(req.rawHeaders, x.headers, x);
    const bad = checkRequestHead(req, x, authority !== undefined);
    if (bad !== undefined) return x.reply("bad_request", bad, true);
    // Inside a CONNECT tunnel, the tunnel's authority decides where requests go.
    authority ??= tunnelAuthorityOf(req.socket);
    // Upgrades that become tunnels never come here (../upgrade/); the others (h2c, or Upgrade
    // without Connection: upgrade) are served as plain HTTP/1.1 with Upgrade removed. Node's parser
    // stops reading after a request that asks for an upgrade, silently dropping what follows: this
    // response is the connection's last.
    if (x.upgrade !== undefined) x.closeAfterResponse();
    if (t === undefined) return x.reply("not_ready", "the proxy has no config from the control plane yet");

    // Service: the fixed one of an --upstream port, else from the authority / Host.
    const host = authority ?? (x.host as string);
    const svc = this.#opts.upstream === undefined ? t.hosts.get(host) : this.fixed;
    if (svc === undefined) {
      return x.reply(
        "no_route",
        this.#opts.upstream === undefined
          ? t.hosts.explainMiss(host)
          : `upstream service ${JSON.stringify(this.#opts.upstream)} is not in this proxy's config`,
      );
    }

    const route = matchRoute(svc, x);
    if (route === undefined) {
      x.stats = svc.stats;
      return x.reply("no_route", `no route of ${svc.name} matches ${req.method} ${x.path}`);
    }
    const redirect = route.features?.filters?.redirect;
    if (redirect !== undefined) {
      x.stats = route.stats;
      return answerRedirect(x, redirect, route.features!.matchedPrefix, host);
    }
    const backend = route.backends.pick();
    if (backend === undefined) {
      x.stats = route.stats;
      return x.reply(
        "upstream_unavailable",
        `route ${route.name} of ${svc.name} has no backend with weight > 0`,
      );
    }
    x.stats = backend.stats;
    const cluster = backend.cluster;
    const clientAddress = req.socket.remoteAddress;
    const hashKey = cluster.hashOn === undefined ? undefined : hashKeyOf(cluster.hashOn, x, clientAddress);
    if (route.features !== undefined) {
      return runRoute({
        x,
        route,
        features: route.features,
        backend,
        host,
        clientAddress,
        hashKey,
        timeouts: this.#timeouts,
        clock: this.#clock,
      });
    }

    // The plain path: one attempt, accounted per endpoint (balancer load, outlier detection).
    const limits = cluster.limits;
    if (limits.maxRequests > 0 && limits.active >= limits.maxRequests) {
      limits.overflowRequests?.inc();
      return x.reply(
        "circuit_open",
        `${cluster.destination}: ${limits.maxRequests} requests already in flight`,
      );
    }
    const endpoint = cluster.endpoints.pick(hashKey);
    if (endpoint === undefined) {
      return x.reply(
        "upstream_unavailable",
        `${cluster.destination} has no endpoints (cluster ${cluster.name})`,
      );
    }
    cluster.endpoints.start(endpoint);
    limits.active++;
    x.accountRef = endpoint;
    x.timeoutLimit = this.#timeoutLimit;
    x.onEnd = endPlainExchange;
    x.retryRef = backend;
    x.hashKey = hashKey;
    x.onNotSent = resendElsewhere;
    x.upstream = endpoint.value.label;
    x.forwardTo(endpoint.value.pool.dispatcher, { host, clientAddress, proto: "http" }, this.#timeouts);
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    this.lifecycle.close();
    this.upgrades.tunnels.destroyAll();
    await this.pools.destroy();
  }

  async drain(timeoutMs?: number): Promise<void> {
    await this.lifecycle.drain(timeoutMs);
    this.#unsubscribe();
    this.upgrades.tunnels.destroyAll();
    await this.pools.close();
  }
}

/** Sends a request that never left the proxy to another endpoint; false when there is none to try. */
function resendElsewhere(x: Exchange, err: Error): boolean {
  const ep = x.accountRef as EndpointHandle<CompiledEndpoint>;
  const set = ep.value.cluster.endpoints;
  if (x.resends >= Math.min(MAX_RESENDS, set.size - 1) || x.upstreamRequest === undefined) return false;
  const outcome = notSentOutcome(err);
  if (outcome === undefined) return false;
  const next = set.pick(x.hashKey, ep);
  if (next === undefined || next.key === ep.key) return false;
  set.end(ep, outcome, performance.now() - x.startedAt); // the failed endpoint learns it now
  set.start(next);
  x.resends++;
  x.accountRef = next;
  x.upstream = next.value.label;
  (x.retryRef as CompiledBackend).counters.retry("not-sent").inc();
  next.value.pool.dispatcher.dispatch(x.upstreamRequest, x);
  return true;
}

/** Ends a plain exchange's accounting: the endpoint's load and health, the destination's in-flight count. */
function endPlainExchange(x: Exchange, failure: LocalReplyCode | undefined): void {
  const ep = x.accountRef as EndpointHandle<CompiledEndpoint>;
  const cluster = ep.value.cluster;
  cluster.limits.active--;
  if (failure === "circuit_open") cluster.limits.overflowPending?.inc();
  const outcome = failure === undefined ? outcomeOfStatus(x.status) : outcomeOfReply(failure);
  cluster.endpoints.end(ep, outcome, performance.now() - x.startedAt);
}

export function createOutboundListener(opts: OutboundListenerOptions): OutboundListener {
  const o = new Outbound(opts);
  return {
    get table() {
      return o.table;
    },
    pools: o.pools,
    describeClusters: () =>
      [...(o.table?.clusters.values() ?? [])].map((c) => ({
        name: c.name,
        destination: c.destination,
        loadBalancer: c.policy?.loadBalancer?.type ?? "LeastRequest",
        active: c.limits.active,
        endpoints: c.endpoints.describe(),
      })),
    listen: (port: number, host?: string): Promise<AddressInfo> => o.lifecycle.listen(port, host),
    address: () => o.lifecycle.address(),
    drain: (timeoutMs?: number) => o.drain(timeoutMs),
    close: () => o.close(),
  };
}
