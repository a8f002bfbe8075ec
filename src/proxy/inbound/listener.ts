// The inbound listener: where other proxies reach this service. mTLS STRICT by default — the
// client's certificate must chain to the trust bundle (refused at the handshake otherwise) and carry
// a weft SPIFFE ID of the mesh's trust domain (another domain → 403 untrusted_peer); TLS 1.3 only,
// ALPN http/1.1, the certificate swapped in place with setSecureContext on renewal. A request then goes: peer (cached per connection) → head checks →
// forward to the local app (config.inbound.appAddress:appPort) on a plaintext keep-alive pool, with
// X-Forwarded-Client-Cert set from the verified peer (any client-supplied one is removed). When the
// snapshot sets inbound.rateLimit, a token bucket (rate-limit.ts) is consulted once the peer is known
// and the head is valid: an empty bucket is a local 429 `rate_limited` with Retry-After. The wait for
// the app's response head is the caller's route deadline (x-weft-deadline-ms, from a verified mTLS
// peer only), else the listener's default (none unless --response-headers-timeout).

import type { IncomingMessage, ServerResponse } from "node:http";
import type https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { ProxySnapshot, RateLimit } from "../../model/snapshot.ts";
import {
  DEADLINE_HEADER,
  DEFAULT_TIMEOUT_LIMIT,
  DEFAULT_TIMEOUTS,
  Exchange,
  parseDeadline,
  type UpstreamTimeouts,
} from "../http/exchange.ts";
import { ListenerLifecycle, type ProxyListener } from "../http/listener-lifecycle.ts";
import { LocalReplies } from "../http/local-reply.ts";
import { checkRequestHead, scanRequestHeaders } from "../http/request-head.ts";
import { parseAbsoluteForm } from "../http/request-target.ts";
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, HttpEdge, type EdgeLimits } from "../http/server-edge.ts";
import type { CounterSeries } from "../metrics/families.ts";
import { StatsByCode, type ProxyMetrics } from "../metrics/registry.ts";
import { ALPN_HTTP1, MIN_TLS_VERSION, serverContextOptions } from "../tls/secure-context.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { UpstreamPools, type PoolOptions, type UpstreamPool } from "../transport/upstream-pools.ts";
import { attachPlaintextPeer, attachTlsPeer, peerOf, type InboundPeer } from "./peer.ts";
import { createSniffingServer } from "./protocol-sniffer.ts";
import { monotonicClock, RateLimiter, type Clock } from "./rate-limit.ts";
import { tlsFailureReason } from "./tls-failures.ts";
import { InboundUpgrades } from "../upgrade/inbound-upgrade.ts";
import { isTunnelUpgrade } from "../upgrade/upgrade-head.ts";

export interface InboundListenerOptions {
  config: Source<ProxySnapshot>;
  tls: Source<TlsMaterial>;
  metrics: ProxyMetrics;
  limits?: EdgeLimits;
  timeouts?: Partial<UpstreamTimeouts>;
  pool?: PoolOptions;
  /** Clock of the rate limit's token buckets (ms, monotonic); injectable for tests. */
  rateLimitClock?: Clock;
  /** Idle timeout of upgraded (WebSocket, ...) connections, ms; default 1 h (../upgrade/tunnel.ts). */
  upgradeIdleTimeoutMs?: number;
}

export interface InboundListener extends ProxyListener {
  readonly pools: UpstreamPools;
}

/** What the inbound needs from a snapshot, compiled once per change. */
class InboundTable {
  readonly version: string;
  readonly generation: number;
  readonly app: UpstreamPool;
  readonly appLabel: string;
  readonly destination: string;
  readonly permissive: boolean;
  readonly trustDomain: string;
  /** Undefined without a rate limit: the request path then pays one comparison. */
  readonly limiter: RateLimiter | undefined;
  readonly limitDetail: string;
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
  ) {
    this.version = s.version;
    this.generation = generation;
    this.app = pools.get({ address: s.inbound.appAddress, port: s.inbound.appPort });
    this.appLabel = `app at ${this.app.label}`;
    this.destination = `${s.proxy.service}.${s.proxy.namespace}`;
    this.permissive = s.mesh.mtlsMode === "PERMISSIVE";
    this.trustDomain = s.mesh.trustDomain;
    this.#metrics = metrics;
    const rl = s.inbound.rateLimit;
    // Unrelated config changes (a new endpoint elsewhere) must not refill everyone's buckets.
    this.limiter =
      rl === undefined ? undefined : previous?.sameSettings(rl) ? previous : new RateLimiter(rl, clock);
    this.limitDetail = rl === undefined ? "" : describeLimit(this.destination, rl);
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

class Inbound {
  table: InboundTable | undefined;
  readonly pools: UpstreamPools;
  readonly tlsEdge: HttpEdge;
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
    const replies = new LocalReplies(opts.metrics, "inbound");
    const material = opts.tls.current();
    const tlsOptions: https.ServerOptions = {
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ALPN_HTTP1,
      minVersion: MIN_TLS_VERSION,
      ...(material ? serverContextOptions(material) : {}),
    };
    // Upgrade requests (WebSocket, ...) are checked and tunnelled to the app by ../upgrade/.
    this.upgrades = new InboundUpgrades({
      metrics: opts.metrics,
      pools: this.pools,
      timeouts: this.#timeouts,
      timeoutLimit: this.#timeoutLimit,
      idleMs: opts.upgradeIdleTimeoutMs,
      connectTimeoutMs: opts.pool?.connectTimeoutMs,
      notReadyStats: this.#notReadyStats,
      table: () => this.table,
      peer: (socket) => peerOf(socket) as InboundPeer,
    });
    this.tlsEdge = new HttpEdge({
      replies,
      tls: tlsOptions,
      handler: (req, res) => this.handle(req, res, this.tlsEdge),
      onUpgrade: (req, socket, head) => this.upgrades.handle(this.tlsEdge, req, socket, head),
      isUpgrade: isTunnelUpgrade,
      ...opts.limits,
    });
    this.plainEdge = new HttpEdge({
      replies,
      handler: (req, res) => this.handle(req, res, this.plainEdge),
      onUpgrade: (req, socket, head) => this.upgrades.handle(this.plainEdge, req, socket, head),
      isUpgrade: isTunnelUpgrade,
      ...opts.limits,
    });
    this.tlsEdge.adoptConnections();
    this.plainEdge.adoptConnections();

    const tlsServer = this.tlsEdge.server;
    tlsServer.on("secureConnection", (socket: TLSSocket) => {
      if (attachTlsPeer(socket, this.#opts.tls.current()?.spiffeId) === undefined) {
        opts.metrics.tlsHandshakeFailures.series("inbound", "no_spiffe_id").value++;
        socket.destroy();
      }
    });
    tlsServer.on("tlsClientError", (err: Error, socket: TLSSocket) => {
      const reason = tlsFailureReason(err, socket.authorizationError);
      opts.metrics.tlsHandshakeFailures.series("inbound", reason).value++;
    });

    const front = createSniffingServer(
      {
        tls: (socket) => tlsServer.emit("connection", socket),
        plaintext: (socket, looksLikeHttp) => this.#plaintext(socket, looksLikeHttp, replies),
      },
      opts.limits?.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
    this.lifecycle = new ListenerLifecycle(front, [this.tlsEdge, this.plainEdge], opts.metrics, "inbound");

    const config = opts.config.current();
    if (config) this.apply(config);
    this.#unsubscribe.push(
      opts.config.subscribe((s) => this.apply(s)),
      opts.tls.subscribe((m) =>
        (tlsServer as unknown as https.Server).setSecureContext(serverContextOptions(m)),
      ),
    );
  }

  #plaintext(socket: Socket, looksLikeHttp: boolean, replies: LocalReplies): void {
    if (this.table?.permissive) {
      attachPlaintextPeer(socket);
      this.plainEdge.server.emit("connection", socket);
      socket.resume();
      return;
    }
    this.#opts.metrics.tlsHandshakeFailures.series("inbound", "plaintext").value++;
    if (!looksLikeHttp) {
      socket.destroy();
      return;
    }
    replies.writeRaw(socket, "mtls_required", "this port accepts mesh mTLS only (plaintext refused)");
    socket.destroySoon();
  }

  apply(s: ProxySnapshot): void {
    if (s.version === this.table?.version) return;
    this.table = new InboundTable(
      s,
      ++this.#generation,
      this.pools,
      this.#opts.metrics,
      this.table?.limiter,
      this.#opts.rateLimitClock ?? monotonicClock,
    );
    this.pools.sync();
    this.#opts.metrics.configUpdates.series("inbound").value++;
  }

  handle(req: IncomingMessage, res: ServerResponse, edge: HttpEdge): void {
    const t = this.table;
    const peer = peerOf(req.socket) as InboundPeer;
    let stats: StatsByCode;
    if (t === undefined) stats = this.#notReadyStats;
    else if (peer.statsGen === t.generation) stats = peer.stats as StatsByCode;
    else {
      // A peer from another trust domain is not the local service its name says: counted as unknown.
      const foreign = peer.trustDomain !== undefined && peer.trustDomain !== t.trustDomain;
      stats = peer.stats = t.statsFor(foreign ? "unknown" : peer.service);
      peer.statsGen = t.generation;
    }
    const x = new Exchange(req, res, edge, stats);
    x.peer = peer;

    const url = req.url as string;
    let authority: string | undefined;
    if (url.charCodeAt(0) === 47 /* / */) {
      x.target = url;
    } else {
      const abs = parseAbsoluteForm(url);
      if ("error" in abs) return x.reply("bad_request", "malformed request target", true);
      authority = abs.authority;
      x.target = abs.target;
    }

    scanRequestHeaders(req.rawHeaders, x.headers, x);
    const bad = checkRequestHead(req, x, authority !== undefined);
    if (bad !== undefined) return x.reply("bad_request", bad, true);
    // Upgrades that become tunnels never come here (../upgrade/); the others (h2c, or Upgrade
    // without Connection: upgrade) are served as plain HTTP/1.1 with Upgrade removed. Node's parser
    // stops reading after a request that asks for an upgrade, silently dropping what follows: this
    // response is the connection's last.
    if (x.upgrade !== undefined) x.closeAfterResponse();
    if (t === undefined) return x.reply("not_ready", "the proxy has no config from the control plane yet");
    if (peer.trustDomain !== undefined && peer.trustDomain !== t.trustDomain) {
      // The trust bundle may hold other domains' roots (federation, a migration): chaining to it
      // proves the certificate, not that it belongs to this mesh.
      return x.reply(
        "untrusted_peer",
        `peer ${peer.id} is from trust domain ${JSON.stringify(peer.trustDomain)}; this mesh is ${JSON.stringify(t.trustDomain)}`,
      );
    }
    if (t.limiter !== undefined) {
      // Keyed by SPIFFE ID (perSource); plaintext PERMISSIVE peers have none and share one bucket.
      const waitMs = t.limiter.take(peer.id ?? "");
      if (waitMs > 0) {
        t.limitedFor(peer.service).value++;
        // Whole seconds, rounded up (RFC 9110); LocalReplies' writeHead keeps headers set here.
        res.setHeader("retry-after", String(Math.ceil(waitMs / 1000)));
        return x.reply("rate_limited", t.limitDetail);
      }
    }

    x.upstream = t.appLabel;
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
    x.forwardTo(
      t.app.dispatcher,
      { host: authority ?? (x.host as string), clientAddress: peer.address, proto },
      timeouts,
    );
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

function describeLimit(destination: string, rl: RateLimit): string {
  const scope = rl.perSource ? "from each caller (by SPIFFE ID)" : "to this instance";
  return `${destination} accepts ${rl.requestsPerSecond} requests/s (burst ${rl.burst}) ${scope}`;
}

export function createInboundListener(opts: InboundListenerOptions): InboundListener {
  const i = new Inbound(opts);
  return {
    pools: i.pools,
    listen: (port: number, host?: string): Promise<AddressInfo> => i.lifecycle.listen(port, host),
    address: () => i.lifecycle.address(),
    drain: (timeoutMs?: number) => i.drain(timeoutMs),
    close: () => i.close(),
  };
}
