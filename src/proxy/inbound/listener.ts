// The inbound listener: where other proxies reach this service. mTLS STRICT by default — the
// client's certificate must chain to the trust bundle (refused at the handshake otherwise) and carry
// a weft SPIFFE ID of the mesh's trust domain (another domain → 403 untrusted_peer); TLS 1.3 only,
// the certificate swapped in place on renewal — all in tls-front.ts, which hands each connection to
// the edge of its ALPN protocol (HTTP/1.1 here; h2 and the `alpn` option's protocols, e.g. the TCP tunnel, registered with registerAlpn). A request then goes: peer (cached per connection) → head checks →
// forward to the local app (config.inbound.appAddress:appPort) on a plaintext keep-alive pool, with
// X-Forwarded-Client-Cert set from the verified peer (any client-supplied one is removed). When the
// snapshot sets inbound.rateLimit, the listener's filter chain starts with the rate limit
// (../filters/rate-limit/), consulted once the peer is known and the head is valid: an empty bucket is
// a local 429 `rate_limited` with Retry-After. The chain ends in ForwardToApp. The wait for
// the app's response head is the caller's route deadline (x-weft-deadline-ms, from a verified mTLS
// peer only), else the listener's default (none unless --response-headers-timeout).

import type { IncomingMessage, ServerResponse } from "node:http";
import net from "node:net";
import type { AddressInfo, Socket } from "node:net";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import {
  DEADLINE_HEADER,
  DEFAULT_TIMEOUT_LIMIT,
  DEFAULT_TIMEOUTS,
  parseDeadline,
  type UpstreamTimeouts,
} from "../pipeline/timeouts.ts";
import type { Exchange } from "../pipeline/exchange.ts";
import { H1Exchange } from "../http/h1-exchange.ts";
import { RequestEvents, type RequestObserver } from "../pipeline/events.ts";
import { requestMetrics } from "../pipeline/request-metrics.ts";
import { H2Edge } from "../http/h2-edge.ts";
import { H2Exchange } from "../http/h2-exchange.ts";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { ListenerLifecycle, type ProxyListener } from "../http/listener-lifecycle.ts";
import { UndecidedSockets } from "../http/undecided-sockets.ts";
import { LocalReplies } from "../http/local-reply.ts";
import { grpcReplyShape } from "../grpc/local-reply.ts";
import { honourGrpcTimeout } from "../grpc/deadline.ts";
import { parseDstPort } from "../http/dst-port.ts";
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, HttpEdge, type EdgeLimits } from "../http/server-edge.ts";
import type { CounterSeries } from "../metrics/families.ts";
import { StatsByCode, type ProxyMetrics } from "../metrics/registry.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { UpstreamPools, type PoolOptions, type UpstreamPool } from "../transport/upstream-pools.ts";
import { attachPlaintextPeer, peerOf, type InboundPeer } from "./peer.ts";
import { createSniffingServer, DEFAULT_DETECT_TIMEOUT_MS, type PlaintextKind } from "./protocol-sniffer.ts";
import { DEFAULT_TCP_IDLE_TIMEOUT_MS, splice } from "../tcp/splice.ts";
import { monotonicClock, RateLimiter, type Clock } from "../filters/rate-limit/rate-limiter.ts";
import { describeLimit, RateLimitFilter } from "../filters/rate-limit/rate-limit.ts";
import { compose, type Filter, type Next } from "../filters/filter.ts";
import { applyOrLog, followSnapshots } from "../config-swap.ts";
import { TlsFront, type AlpnHandler } from "./tls-front.ts";
import { InboundUpgrades } from "../upgrade/inbound-upgrade.ts";
import { UpgradeExchange } from "../upgrade/upgrade-exchange.ts";
import { isTunnelUpgrade } from "../upgrade/upgrade-head.ts";

export interface InboundListenerOptions {
  config: Source<ProxySnapshot>;
  tls: Source<TlsMaterial>;
  metrics: ProxyMetrics;
  limits?: EdgeLimits;
  timeouts?: Partial<UpstreamTimeouts>;
  pool?: PoolOptions;
  /** How long a plaintext client's protocol is waited for (protocol-sniffer.ts); default 1 s. */
  detectTimeoutMs?: number;
  /** Clock of the rate limit's token buckets (ms, monotonic); injectable for tests. */
  rateLimitClock?: Clock;
  /** Where config problems are reported (a snapshot that does not compile keeps the previous one). */
  log?: (msg: string) => void;
  /** Protocols besides HTTP/1.1 offered by ALPN, each taking its connections (tls-front.ts registerAlpn). */
  alpn?: Record<string, AlpnHandler>;
  /** Request observers besides the metrics (../pipeline/events.ts), fixed for the listener's life. */
  observers?: readonly RequestObserver[];
  /** Accept h2 from peer sidecars (ALPN; default on). false: HTTP/1.1 only (tests of the fallback). */
  http2?: boolean;
  /** Idle timeout of upgraded (WebSocket, ...) connections, ms; default 1 h (../upgrade/tunnel.ts). */
  upgradeIdleTimeoutMs?: number;
}

export interface InboundListener extends ProxyListener {
  readonly pools: UpstreamPools;
  /** mTLS connections that negotiate ALPN `id` go to `handler` (after the same peer checks). */
  registerAlpn(id: string, handler: AlpnHandler): void;
}

/** What the inbound needs from a snapshot, compiled once per change. */
class InboundTable {
  readonly version: string;
  readonly generation: number;
  readonly app: UpstreamPool;
  readonly appLabel: string;
  /** Other declared (non-tcp) service ports whose app port differs from `app`'s: by service port. */
  readonly appByPort: Map<number, { pool: UpstreamPool; label: string }> | undefined;
  readonly destination: string;
  /** The app's first port (opaque PERMISSIVE connections are spliced to it). */
  readonly appAddress: string;
  readonly appPort: number;
  /**
   * Whether a plaintext client that is not HTTP may be passed to the app as TCP: only when the first
   * port is undeclared or declared `tcp` — a declared HTTP port always gets HTTP parsing (so that a
   * lenient app parser cannot be reached around the proxy's checks).
   */
  readonly opaqueAllowed: boolean;
  readonly permissive: boolean;
  readonly trustDomain: string;
  /** Undefined without a rate limit. */
  readonly limiter: RateLimiter | undefined;
  /**
   * The listener's filter chain, composed once per config: the rate limit when one is set, then
   * the forward to the app. Without filters it is the forward itself (the fast path).
   */
  readonly chain: Next<Exchange>;
  readonly #metrics: ProxyMetrics;
  readonly #bySource = new Map<string, StatsByCode>();
  readonly #limitedBySource = new Map<string, CounterSeries>();

  constructor(
    s: ProxySnapshot,
    generation: number,
    pools: UpstreamPools,
    metrics: ProxyMetrics,
    previous: RateLimiter | undefined,
    clock: Clock,
    forward: (t: InboundTable) => Next<Exchange>,
  ) {
    this.version = s.version;
    this.generation = generation;
    const ports = s.inbound.ports ?? [];
    // The default app port speaks what the Service port it serves is declared as (the first such).
    const own = ports.find((p) => p.appPort === s.inbound.appPort) ?? ports[0];
    this.app = pools.get(
      { address: s.inbound.appAddress, port: s.inbound.appPort },
      appProtocol(own?.protocol),
    );
    this.appAddress = s.inbound.appAddress;
    this.appPort = s.inbound.appPort;
    const first = s.inbound.ports?.[0];
    this.opaqueAllowed = first === undefined || first.protocol === "tcp";
    this.appLabel = `app at ${this.app.label}`;
    for (const p of ports) {
      if (p.protocol === "tcp" || p.appPort === s.inbound.appPort) continue;
      const pool = pools.get({ address: s.inbound.appAddress, port: p.appPort }, appProtocol(p.protocol));
      (this.appByPort ??= new Map()).set(p.port, { pool, label: `app at ${pool.label}` });
    }
    this.destination = `${s.proxy.service}.${s.proxy.namespace}`;
    this.permissive = s.mesh.mtlsMode === "PERMISSIVE";
    this.trustDomain = s.mesh.trustDomain;
    this.#metrics = metrics;
    const rl = s.inbound.rateLimit;
    // Unrelated config changes (a new endpoint elsewhere) must not refill everyone's buckets.
    this.limiter =
      rl === undefined ? undefined : previous?.sameSettings(rl) ? previous : new RateLimiter(rl, clock);
    const filters: Filter<Exchange>[] = [];
    if (this.limiter !== undefined && rl !== undefined)
      filters.push(
        new RateLimitFilter(this.limiter, describeLimit(this.destination, rl), (src) => this.limitedFor(src)),
      );
    this.chain = compose(filters, forward(this));
  }

  /** weft_rate_limited_total for one source, bound on its first refusal. */
  limitedFor(source: string): CounterSeries {
    let c = this.#limitedBySource.get(source);
    if (c === undefined) {
      c = this.#metrics.rateLimited.series(source, this.destination);
      this.#limitedBySource.set(source, c);
    }
    return c;
  }

  statsFor(source: string): StatsByCode {
    let s = this.#bySource.get(source);
    if (s === undefined) {
      s = new StatsByCode(this.#metrics, "inbound", source, this.destination, "");
      this.#bySource.set(source, s);
    }
    return s;
  }
}

/** How the app is spoken to on a port: h2c (prior knowledge) for `http2` and `grpc`, else HTTP/1.1. */
function appProtocol(protocol: string | undefined): "http1" | "h2c" {
  return protocol === "http2" || protocol === "grpc" ? "h2c" : "http1";
}

class Inbound {
  table: InboundTable | undefined;
  readonly pools: UpstreamPools;
  readonly tlsEdge: HttpEdge;
  readonly tlsFront: TlsFront;
  readonly h2Edge: H2Edge;
  readonly plainEdge: HttpEdge;
  readonly lifecycle: ListenerLifecycle;
  readonly upgrades: InboundUpgrades;
  readonly #opts: InboundListenerOptions;
  readonly #timeouts: UpstreamTimeouts;
  readonly #timeoutLimit: string | undefined;
  readonly #notReadyStats: StatsByCode;
  readonly #unsubscribe: (() => void)[] = [];
  #generation = 0;

  constructor(opts: InboundListenerOptions) {
    this.#opts = opts;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.#timeoutLimit = this.#timeouts.responseHeadersMs > 0 ? DEFAULT_TIMEOUT_LIMIT : undefined;
    this.#notReadyStats = new StatsByCode(opts.metrics, "inbound", "unknown", "unknown", "");
    this.pools = new UpstreamPools({
      tls: opts.tls,
      metrics: opts.metrics,
      direction: "inbound",
      ...opts.pool,
    });
    const replies = new LocalReplies(opts.metrics, "inbound", grpcReplyShape);
    const events = new RequestEvents([requestMetrics, ...(opts.observers ?? [])]);
    // Fed decrypted sockets by the TLS front (its peer already attached).
    // Upgrade requests (WebSocket, ...) are checked and tunnelled to the app by ../upgrade/.
    this.upgrades = new InboundUpgrades({
      metrics: opts.metrics,
      pools: this.pools,
      idleMs: opts.upgradeIdleTimeoutMs,
      connectTimeoutMs: opts.pool?.connectTimeoutMs,
      table: () => this.table,
      statsFor: (peer) => this.#statsFor(peer),
      serve: (x, peer) => this.serve(x, peer),
    });
    this.tlsEdge = new HttpEdge({
      replies,
      decrypted: true,
      events,
      handler: (req, res) => this.handle(req, res, this.tlsEdge),
      onUpgrade: (req, socket, head) => this.upgrades.accept(this.tlsEdge, req, socket, head),
      isUpgrade: isTunnelUpgrade,
      ...opts.limits,
    });
    this.plainEdge = new HttpEdge({
      replies,
      events,
      handler: (req, res) => this.handle(req, res, this.plainEdge),
      onUpgrade: (req, socket, head) => this.upgrades.accept(this.plainEdge, req, socket, head),
      isUpgrade: isTunnelUpgrade,
      ...opts.limits,
    });
    this.tlsEdge.adoptConnections();
    this.plainEdge.adoptConnections();
    this.tlsFront = new TlsFront({
      tls: opts.tls,
      metrics: opts.metrics,
      handshakeTimeoutMs: opts.limits?.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      http1: (socket) => this.tlsEdge.server.emit("connection", socket),
    });
    // Peer sidecars speak h2 (transport/alpn-pool.ts): their streams become requests like any other.
    this.h2Edge = new H2Edge({
      replies,
      events,
      handler: (stream, headers, flags, raw) => this.handleH2(stream, headers, flags, raw),
    });
    if (opts.http2 !== false) this.tlsFront.registerAlpn("h2", (socket) => this.h2Edge.accept(socket));
    for (const [id, handler] of Object.entries(opts.alpn ?? {})) this.tlsFront.registerAlpn(id, handler);

    const undecided = new UndecidedSockets();
    const front = createSniffingServer(
      {
        tls: (socket) => this.tlsFront.accept(socket),
        plaintext: (socket, kind) => this.#plaintext(socket, kind, replies),
        acceptsSilent: () => this.table?.permissive === true,
      },
      opts.detectTimeoutMs ?? DEFAULT_DETECT_TIMEOUT_MS,
      opts.limits?.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      undecided,
    );
    this.lifecycle = new ListenerLifecycle(
      front,
      [this.tlsEdge, this.plainEdge, this.h2Edge, undecided],
      opts.metrics,
      "inbound",
    );

    const config = opts.config.current();
    if (config) applyOrLog("inbound listener", (s) => this.prepare(s), config, opts.log);
    this.#unsubscribe.push(
      followSnapshots(opts.config, "inbound listener", (s) => this.prepare(s), opts.log),
      () => this.tlsFront.close(),
    );
  }

  /**
   * A plaintext client (protocol-sniffer.ts). PERMISSIVE: HTTP/1.x and h2 (prior knowledge) are served
   * like mesh requests, from an unauthenticated peer; anything else (opaque bytes, or a client that
   * waits for the server to speak first) is spliced to the app's first port as TCP when that port is
   * undeclared or `tcp`, else parsed as HTTP/1.1 (and refused) — the declared protocol wins. STRICT:
   * refused.
   */
  #plaintext(socket: Socket, kind: PlaintextKind, replies: LocalReplies): void {
    const t = this.table;
    if (t?.permissive) {
      attachPlaintextPeer(socket);
      if (kind === "h2") this.h2Edge.accept(socket);
      else if (kind === "http1" || !t.opaqueAllowed) {
        // A declared HTTP port: the HTTP/1.1 edge parses (and refuses) whatever it is.
        this.plainEdge.server.emit("connection", socket);
        socket.resume();
      } else this.#opaque(socket, t);
      return;
    }
    this.#opts.metrics.tlsHandshakeFailures.series("inbound", "plaintext").value++;
    if (kind !== "http1") {
      socket.destroy();
      return;
    }
    replies.writeRaw(socket, "mtls_required", "this port accepts mesh mTLS only (plaintext refused)");
    socket.destroySoon();
  }

  /** PERMISSIVE, not HTTP: bytes both ways to the app's first port (counted as weft_tcp_* inbound). */
  #opaque(socket: Socket, t: InboundTable): void {
    const app = net.connect({ host: t.appAddress, port: t.appPort, allowHalfOpen: true });
    app.on("error", () => socket.destroy());
    app.once("connect", () => {
      app.removeAllListeners("error");
      splice(socket, app, {
        idleTimeoutMs: DEFAULT_TCP_IDLE_TIMEOUT_MS,
        stats: this.#opts.metrics.tcpStats("inbound", "unknown", t.destination),
      });
    });
  }

  /** Compiles the inbound table (throws if it cannot); the returned commit swaps it in (config-swap.ts). */
  prepare(s: ProxySnapshot): (() => void) | undefined {
    if (s.version === this.table?.version) return undefined;
    const generation = this.#generation + 1;
    const table = new InboundTable(
      s,
      generation,
      this.pools,
      this.#opts.metrics,
      this.table?.limiter,
      this.#opts.rateLimitClock ?? monotonicClock,
      (t) => new ForwardToApp(t, this.#timeouts, this.#timeoutLimit, this.upgrades),
    );
    return () => {
      this.#generation = generation;
      this.table = table;
      this.pools.sync();
      this.#opts.metrics.configUpdates.series("inbound").value++;
    };
  }

  /** The HTTP/1.1 edges' entry: the request record is read, then served like any other. */
  handle(req: IncomingMessage, res: ServerResponse, edge: HttpEdge): void {
    const peer = peerOf(req.socket) as InboundPeer;
    const x = new H1Exchange(req, res, edge, this.#statsFor(peer));
    x.peer = peer;
    if (!x.readRequest(undefined)) return;
    this.serve(x, peer);
  }

  /** The HTTP/2 edge's entry (mTLS peers that negotiated h2): one stream, one request. */
  handleH2(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]): void {
    const peer = peerOf(stream.session?.socket ?? null) as InboundPeer;
    const x = new H2Exchange(stream, headers, flags, raw, this.h2Edge, "https", this.#statsFor(peer));
    x.peer = peer;
    if (!x.readRequest()) return;
    this.serve(x, peer);
  }

  /** Request stats for a peer, cached on its connection per config generation. */
  #statsFor(peer: InboundPeer): StatsByCode {
    const t = this.table;
    if (t === undefined) return this.#notReadyStats;
    if (peer.statsGen === t.generation) return peer.stats as StatsByCode;
    // A peer from another trust domain is not the local service its name says: counted as unknown.
    const foreign = peer.trustDomain !== undefined && peer.trustDomain !== t.trustDomain;
    peer.statsGen = t.generation;
    return (peer.stats = t.statsFor(foreign ? "unknown" : peer.service));
  }

  /** Serves a request whatever edge it came from: trust domain → rate limit → forward to the app. */
  serve(x: Exchange, peer: InboundPeer): void {
    const started = x.events.start;
    if (started !== undefined) started(x);
    if (x.grpcTimeout !== undefined) honourGrpcTimeout(x);
    const t = this.table;
    if (t === undefined) return x.reply("not_ready", "the proxy has no config from the control plane yet");
    if (peer.trustDomain !== undefined && peer.trustDomain !== t.trustDomain) {
      // The trust bundle may hold other domains' roots (federation, a migration): chaining to it
      // proves the certificate, not that it belongs to this mesh.
      return x.reply(
        "untrusted_peer",
        `peer ${peer.id} is from trust domain ${JSON.stringify(peer.trustDomain)}; this mesh is ${JSON.stringify(t.trustDomain)}`,
      );
    }
    t.chain.run(x);
  }

  async close(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    this.lifecycle.close();
    this.upgrades.tunnels.destroyAll();
    await this.pools.destroy();
  }

  async drain(timeoutMs?: number): Promise<void> {
    await this.lifecycle.drain(timeoutMs);
    for (const u of this.#unsubscribe) u();
    this.upgrades.tunnels.destroyAll();
    await this.pools.close();
  }
}

/**
 * The end of the inbound chain: forward to the local app with X-Forwarded-Client-Cert from the
 * verified peer, waiting for the response head as long as the caller's deadline says.
 */
class ForwardToApp implements Next<Exchange> {
  readonly #t: InboundTable;
  readonly #timeouts: UpstreamTimeouts;
  readonly #timeoutLimit: string | undefined;
  readonly #upgrades: InboundUpgrades;

  constructor(
    t: InboundTable,
    timeouts: UpstreamTimeouts,
    timeoutLimit: string | undefined,
    upgrades: InboundUpgrades,
  ) {
    this.#t = t;
    this.#timeouts = timeouts;
    this.#timeoutLimit = timeoutLimit;
    this.#upgrades = upgrades;
  }

  run(x: Exchange): void {
    const t = this.#t;
    const peer = x.peer as InboundPeer;
    // A multi-port service: the service port the calling sidecar names (only a verified peer's; an
    // unknown one goes to the default app port) picks the app port (../http/dst-port.ts).
    let app = t.app;
    x.upstream = t.appLabel;
    if (x.dstPort !== undefined && peer.id !== undefined && t.appByPort !== undefined) {
      const other = t.appByPort.get(parseDstPort(x.dstPort) ?? 0);
      if (other !== undefined) {
        app = other.pool;
        x.upstream = other.label;
      }
    }
    if (peer.xfcc !== undefined) x.headers.push("x-forwarded-client-cert", peer.xfcc);
    const proto = x.forwardedProto ?? (peer.id === undefined ? "http" : "https");
    // The caller's route timeout governs this side too: its sidecar sent what is left of it. Only a
    // verified mesh peer may set it (a plaintext PERMISSIVE client's is ignored); it is never
    // forwarded to the app (request-head.ts does not copy it).
    let timeouts = this.#timeouts;
    x.timeoutLimit = this.#timeoutLimit;
    if (x.deadline !== undefined && peer.id !== undefined) {
      const ms = parseDeadline(x.deadline);
      if (ms !== undefined) {
        timeouts = { responseHeadersMs: ms, bodyIdleMs: timeouts.bodyIdleMs };
        x.timeoutLimit = `the deadline from ${peer.service}'s route timeouts, sent by its sidecar as ${DEADLINE_HEADER}`;
      }
    }
    const hop = { host: x.authority ?? (x.host as string), clientAddress: peer.address, proto };
    // An Upgrade (WebSocket, ...) goes on a dedicated connection to the app (../upgrade/).
    if (x instanceof UpgradeExchange) return this.#upgrades.forward(x, app, hop, timeouts.responseHeadersMs);
    x.forwardTo(app.dispatcher, hop, timeouts);
  }
}

export function createInboundListener(opts: InboundListenerOptions): InboundListener {
  const i = new Inbound(opts);
  return {
    pools: i.pools,
    registerAlpn: (id, handler) => i.tlsFront.registerAlpn(id, handler),
    listen: (port: number, host?: string): Promise<AddressInfo> => i.lifecycle.listen(port, host),
    address: () => i.lifecycle.address(),
    drain: (timeoutMs?: number) => i.drain(timeoutMs),
    close: () => i.close(),
  };
}
