// The outbound listener: plain HTTP on loopback, where apps point HTTP_PROXY. A request goes
// top-down through: request target (absolute-form, origin-form, or inside a CONNECT tunnel to a
// mesh service — see connect-tunnel.ts) → head checks → service (Host / authority) →
// route (first match) → backend (weighted) → the attempt engine (engine.ts: endpoint from the
// cluster's balancer, forward on that endpoint's pool, mTLS when the endpoint has an identity).
// `handle` is the HTTP/1.1 edge's entry (it reads the request record); `serve` is protocol-neutral.
// A route with filters, faults, mirrors, timeouts, retries or hedging runs its filter chain
// (route-chain.ts), which ends in the same engine with the route as its policy. Every "no" on the
// way is a local reply (errors.ts). The routing table and route chains are compiled once per config
// change (compile.ts); a request only looks things up.
// A request that never left the proxy (connect refused or timed out, TLS handshake failed, a
// keep-alive connection found closed before anything was written) goes to another endpoint at once,
// on every route and with no retry policy (attempt.ts' resend).
// On demand (../agent/subscriptions.ts), a request or CONNECT for a host the config does not have
// waits (bounded) for the control plane to send it, and is routed once more when it comes.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Server, Socket } from "node:net";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { DEFAULT_TIMEOUT_LIMIT, DEFAULT_TIMEOUTS, type UpstreamTimeouts } from "../pipeline/timeouts.ts";
import { run, type ListenerDefaults } from "./engine.ts";
import type { Exchange } from "../pipeline/exchange.ts";
import { H1Exchange } from "../http/h1-exchange.ts";
import { RequestEvents, type RequestObserver } from "../pipeline/events.ts";
import { requestMetrics } from "../pipeline/request-metrics.ts";
import { requestedPort } from "../http/dst-port.ts";
import { H2Edge } from "../http/h2-edge.ts";
import { H2Exchange } from "../http/h2-exchange.ts";
import { createH2cSniffer } from "../http/h2c-sniff.ts";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { ListenerLifecycle, type ProxyListener } from "../http/listener-lifecycle.ts";
import { UndecidedSockets } from "../http/undecided-sockets.ts";
import { LocalReplies } from "../http/local-reply.ts";
import { grpcReplyShape } from "../grpc/local-reply.ts";
import { honourGrpcTimeout } from "../grpc/deadline.ts";
import { DEFAULT_HEADERS_TIMEOUT_MS, HttpEdge, type EdgeLimits } from "../http/server-edge.ts";
import { StatsByCode, type ProxyMetrics } from "../metrics/registry.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { UpstreamPools, type PoolOptions } from "../transport/upstream-pools.ts";
import type { LocalReplyCode } from "../errors.ts";
import type { EndpointDescription } from "../balancer/endpoint-set.ts";
import { hashKeyOf } from "../balancer/hash-key.ts";
import { compileOutbound, matchRoute, type CompiledService, type OutboundTable } from "./compile.ts";
import { REAL_CLOCK, RouteContext, type RouteClock } from "./route-context.ts";
import { pickBackend } from "./route-chain.ts";
import { acceptConnect, openTcpTunnel, tunnelAuthorityOf } from "./connect-tunnel.ts";
import { applyOrLog, followSnapshots } from "../config-swap.ts";
import type { TcpProxy, TcpTarget } from "../tcp/tcp-proxy.ts";
import { OutboundUpgrades } from "../upgrade/outbound-upgrade.ts";
import { UpgradeExchange } from "../upgrade/upgrade-exchange.ts";
import { isTunnelUpgrade } from "../upgrade/upgrade-head.ts";
import type { Subscriptions } from "../agent/subscriptions.ts";
import { discoverable, waitForConnect, waitForExchange } from "./on-demand.ts";

export interface OutboundListenerOptions {
  config: Source<ProxySnapshot>;
  tls: Source<TlsMaterial>;
  metrics: ProxyMetrics;
  /** Fixed service for an --upstream port: every request goes to it regardless of Host. */
  upstream?: string;
  /** The service port of that --upstream port (default the service's first). */
  upstreamPort?: number;
  /** TCP proxying: CONNECT to a service port declared `tcp` becomes an opaque tunnel through it. */
  tcp?: TcpProxy;
  limits?: EdgeLimits;
  timeouts?: Partial<UpstreamTimeouts>;
  pool?: PoolOptions;
  /** Where config problems are reported (a snapshot that does not compile keeps the previous one). */
  log?: (msg: string) => void;
  /** Timers and randomness for routes with faults, retries, hedging and timeouts (tests inject them). */
  clock?: RouteClock;
  /** Request observers besides the metrics (../pipeline/events.ts), fixed for the listener's life. */
  observers?: readonly RequestObserver[];
  /** Accept h2c with prior knowledge besides HTTP/1.1 (default on). */
  h2c?: boolean;
  /** Idle timeout of upgraded (WebSocket, ...) connections, ms; default 1 h (../upgrade/tunnel.ts). */
  upgradeIdleTimeoutMs?: number;
  /**
   * On-demand config (../agent/subscriptions.ts): a request for a host the config does not have waits
   * for the control plane to send it, then is served once more. Absent: such a request is no_route.
   */
  subscriptions?: Subscriptions;
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
  /** Serves a connection accepted elsewhere (an --upstream port whose service port is HTTP). */
  accept(socket: Socket): void;
}

const HTTPS_REFUSAL = "https:// through this proxy needs CONNECT, which is not supported; call http://";

class Outbound {
  table: OutboundTable | undefined;
  fixed: CompiledService | undefined;
  readonly edge: HttpEdge;
  readonly h2Edge: H2Edge;
  readonly pools: UpstreamPools;
  readonly lifecycle: ListenerLifecycle;
  /** What accepts connections: the h2c sniffer (HTTP/1.1 or h2 by the preface), or the HTTP/1.1 edge. */
  front: Server;
  readonly upgrades: OutboundUpgrades;
  readonly #opts: OutboundListenerOptions;
  readonly #timeouts: UpstreamTimeouts;
  /** The attempt engine's listener-wide settings (timeouts, the default timeout's name). */
  readonly #defaults: ListenerDefaults;
  readonly #clock: RouteClock;
  readonly #notReadyStats: StatsByCode;
  readonly #unsubscribe: () => void;

  constructor(opts: OutboundListenerOptions) {
    this.#opts = opts;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.#defaults = {
      timeouts: this.#timeouts,
      timeoutLimit: this.#timeouts.responseHeadersMs > 0 ? DEFAULT_TIMEOUT_LIMIT : undefined,
    };
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
      defaults: this.#defaults,
      clock: this.#clock,
      idleMs: opts.upgradeIdleTimeoutMs,
      connectTimeoutMs: opts.pool?.connectTimeoutMs,
      notReadyStats: this.#notReadyStats,
      table: () => this.table,
      serve: (x) => this.serve(x),
    });
    this.edge = new HttpEdge({
      replies: new LocalReplies(opts.metrics, "outbound", grpcReplyShape),
      events: new RequestEvents([requestMetrics, ...(opts.observers ?? [])]),
      handler: (req, res) => this.handle(req, res),
      onUpgrade: (req, socket, head) => this.upgrades.accept(this.edge, req, socket, head),
      isUpgrade: isTunnelUpgrade,
      onConnect: (req, socket, head) => this.#connect(req, socket, head, true),
      ...opts.limits,
    });
    // Apps may speak h2c with prior knowledge on the same port: the sniffer routes by the preface.
    this.h2Edge = new H2Edge({
      replies: this.edge.replies,
      events: this.edge.events,
      handler: (stream, headers, flags, raw) => this.handleH2(stream, headers, flags, raw),
    });
    let front = this.edge.server as unknown as Server;
    const undecided = new UndecidedSockets();
    if (opts.h2c !== false) {
      this.edge.adoptConnections();
      front = createH2cSniffer(
        {
          http1: (socket) => {
            this.edge.server.emit("connection", socket);
            socket.resume();
          },
          h2c: (socket) => this.h2Edge.accept(socket),
        },
        opts.limits?.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
        undecided,
      );
    }
    this.front = front;
    this.lifecycle = new ListenerLifecycle(
      front,
      [this.edge, this.h2Edge, undecided],
      opts.metrics,
      "outbound",
    );
    const name = opts.upstream === undefined ? "outbound listener" : `upstream port for ${opts.upstream}`;
    const current = opts.config.current();
    if (current) applyOrLog(name, (s) => this.prepare(s), current, opts.log);
    this.#unsubscribe = followSnapshots(opts.config, name, (s) => this.prepare(s), opts.log);
  }

  /** Compiles the routing table (throws if it cannot); the returned commit swaps it in (config-swap.ts). */
  prepare(snapshot: ProxySnapshot): (() => void) | undefined {
    if (snapshot.version === this.table?.version) return undefined;
    const table = compileOutbound(snapshot, this.pools, this.#opts.metrics, this.table);
    return () => {
      this.table = table;
      this.fixed =
        this.#opts.upstream === undefined
          ? undefined
          : (table.services.get(this.#opts.upstream) ?? table.hosts.get(this.#opts.upstream));
      this.pools.sync();
      this.#opts.metrics.configUpdates.series("outbound").value++;
    };
  }

  /**
   * A CONNECT: a TCP tunnel to a `tcp` service port, else an HTTP tunnel to a mesh service. On demand,
   * an authority the config does not have is first waited for (once: `mayWait`); the socket's early
   * bytes stay unread meanwhile, and a client closing it ends the wait.
   */
  #connect(req: IncomingMessage, socket: Socket, head: Buffer, mayWait: boolean): void {
    const authority = req.url ?? "";
    const subs = this.#discovery();
    const name = mayWait && subs !== undefined ? discoverable(subs, this.table!, authority) : undefined;
    if (name !== undefined)
      return waitForConnect(subs!, socket, name, () => this.#connect(req, socket, head, false));
    const tcp = this.#tcpTarget(authority);
    if (tcp !== undefined) return openTcpTunnel(this.edge, socket, head, tcp[0], tcp[1]);
    acceptConnect(this.edge, req, socket, head, (a) => this.#checkTunnel(a));
  }

  /** The subscriptions when a miss may wait for its config: on demand, with a table, not an --upstream port. */
  #discovery(): Subscriptions | undefined {
    return this.table === undefined || this.#opts.upstream !== undefined
      ? undefined
      : this.#opts.subscriptions;
  }

  /** CONNECT to a `tcp` port of a mesh service: the TCP proxy and its target; undefined otherwise. */
  #tcpTarget(authority: string): [TcpProxy, TcpTarget] | undefined {
    const tcp = this.#opts.tcp;
    const t = this.table;
    if (tcp === undefined || t === undefined) return undefined;
    const svc = this.#opts.upstream === undefined ? t.hosts.get(authority) : this.fixed;
    if (svc === undefined) return undefined;
    svc.used = true;
    const port =
      this.#opts.upstreamPort ??
      (this.#opts.upstream === undefined
        ? requestedPort(authority, svc.ports ?? [svc.firstPort], svc.firstPort)
        : undefined);
    const target = tcp.target(svc.name, port);
    return target && [tcp, target];
  }

  /** A CONNECT authority must name a mesh service (or the fixed one of an --upstream port). */
  #checkTunnel(authority: string): [LocalReplyCode, string] | undefined {
    const t = this.table;
    if (t === undefined) return ["not_ready", "the proxy has no config from the control plane yet"];
    if (this.#opts.upstream !== undefined || t.hosts.get(authority) !== undefined) return undefined;
    return ["no_route", t.hosts.explainMiss(authority)];
  }

  /** The HTTP/1.1 edge's entry: the request record is read, then served like any other. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const t = this.table;
    const x = new H1Exchange(req, res, this.edge, t === undefined ? this.#notReadyStats : t.unknownStats);
    if (!x.readRequest(HTTPS_REFUSAL)) return;
    // Inside a CONNECT tunnel, the tunnel's authority decides where requests go.
    x.authority ??= tunnelAuthorityOf(req.socket);
    this.serve(x);
  }

  /** The HTTP/2 (h2c) edge's entry: one stream, one request, served like any other. */
  handleH2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]): void {
    const t = this.table;
    const stats = t === undefined ? this.#notReadyStats : t.unknownStats;
    const x = new H2Exchange(stream, headers, flags, raw, this.h2Edge, "http", stats);
    if (!x.readRequest()) return;
    this.serve(x);
  }

  /** Serves a request whatever edge it came from: service → route → backend → endpoint → forward. */
  serve(x: Exchange): void {
    const started = x.events.start;
    if (started !== undefined) started(x);
    if (x.grpcTimeout !== undefined) honourGrpcTimeout(x);
    this.#route(x, true);
  }

  /** Routes `x`: service → route → backend → endpoint → forward. `mayWait`: on demand, a miss may wait once. */
  #route(x: Exchange, mayWait: boolean): void {
    const t = this.table;
    if (t === undefined) return x.reply("not_ready", "the proxy has no config from the control plane yet");

    // Service: the fixed one of an --upstream port, else from the authority / Host.
    const host = x.authority ?? (x.host as string);
    const svc = this.#opts.upstream === undefined ? t.hosts.get(host) : this.fixed;
    if (svc === undefined) {
      const subs = mayWait ? this.#discovery() : undefined;
      const name = subs === undefined ? undefined : discoverable(subs, t, host);
      if (name !== undefined)
        return waitForExchange(
          subs!,
          x,
          host,
          name,
          () => this.#route(x, false),
          () => this.table,
        );
      return x.reply(
        "no_route",
        this.#opts.upstream === undefined
          ? t.hosts.explainMiss(host)
          : `upstream service ${JSON.stringify(this.#opts.upstream)} is not in this proxy's config`,
      );
    }

    svc.used = true; // for on-demand expiry (../agent/subscriptions.ts)
    // A multi-port service: which of its ports (routes may be limited to one; its sidecar is told).
    const port =
      svc.ports === undefined
        ? 0
        : (this.#opts.upstreamPort ??
          (this.#opts.upstream === undefined
            ? requestedPort(host, svc.ports, svc.firstPort)
            : svc.firstPort));
    // Set here only: an app's own x-weft-dst-port (recorded by the header scan) never travels.
    x.dstPort = port !== svc.firstPort && port !== 0 ? String(port) : undefined;
    const route = matchRoute(svc, x, port);
    if (route === undefined) {
      x.stats = svc.stats;
      return x.reply("no_route", `no route of ${svc.name} matches ${x.method} ${x.path}`);
    }
    const routed = x.events.route;
    if (routed !== undefined) routed(x, route.name);
    // An Upgrade (WebSocket, ...) becomes a tunnel: the route's filters, then a dedicated connection.
    if (x instanceof UpgradeExchange) return this.upgrades.route(x, route, svc.name, host);
    // A route with features runs its chain (route-chain.ts): redirect, backend, filters, attempts.
    if (route.chain !== undefined) {
      x.stats = route.stats;
      return route.chain.run(new RouteContext(x, route, svc.name, host, this.#defaults, this.#clock));
    }
    // The plain path: the attempt engine with no policy (engine.ts).
    const backend = pickBackend(x, route, svc.name);
    if (backend === undefined) return;
    const cluster = backend.cluster;
    const hashKey = cluster.hashOn === undefined ? undefined : hashKeyOf(cluster.hashOn, x, x.clientAddress);
    run(x, backend, hashKey, undefined, this.#defaults);
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

export function createOutboundListener(opts: OutboundListenerOptions): OutboundListener {
  const o = new Outbound(opts);
  let adopted = false;
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
    accept: (socket: Socket) => {
      // Through the h2c sniffer when there is one (it adopted the edge's connections already);
      // else the server never listened itself: start its connection tracking (header timeouts) once.
      if (o.front !== (o.edge.server as unknown as Server)) {
        o.front.emit("connection", socket);
        socket.resume(); // the upstream port paused it: the sniffer reads the first bytes
        return;
      }
      if (!adopted) o.edge.adoptConnections();
      adopted = true;
      o.edge.server.emit("connection", socket);
      socket.resume();
    },
    listen: (port: number, host?: string): Promise<AddressInfo> => o.lifecycle.listen(port, host),
    address: () => o.lifecycle.address(),
    drain: (timeoutMs?: number) => o.drain(timeoutMs),
    close: () => o.close(),
  };
}
