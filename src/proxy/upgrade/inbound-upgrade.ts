// Upgrade requests (WebSocket, ...) at the inbound listener: from a verified mesh peer (mTLS) or, in
// PERMISSIVE mode, a plaintext one. The listener serves them like any inbound request (listener.ts
// `serve`: not_ready, trust domain, its filter chain — the rate limit takes one token — then the
// forward to the app, which picks the app port of a multi-port service and adds
// X-Forwarded-Client-Cert). At the forward it hands them here: the request goes to the app in
// plaintext on a dedicated connection (tunnel.ts). The wait for the app's 101 is the caller's route
// deadline (x-weft-deadline-ms from a verified peer), else the listener's default.

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { HttpEdge } from "../http/server-edge.ts";
import type { InboundPeer } from "../inbound/peer.ts";
import { peerOf } from "../inbound/peer.ts";
import type { ProxyMetrics, StatsByCode } from "../metrics/registry.ts";
import type { Exchange, Hop } from "../pipeline/exchange.ts";
import { ConnectionCounters, createConnector } from "../transport/connector.ts";
import type { UpstreamPool, UpstreamPools } from "../transport/upstream-pools.ts";
import { DEFAULT_UPGRADE_IDLE_MS, UpgradeForward } from "./tunnel.ts";
import { Tunnels } from "./tunnels.ts";
import { UpgradeExchange } from "./upgrade-exchange.ts";
import { UpgradeStatsTable } from "./upgrade-stats.ts";

/** What an upgrade needs of the inbound listener's compiled table. */
export interface InboundUpgradeTable {
  readonly version: string;
  readonly destination: string;
  readonly trustDomain: string;
}

export interface InboundUpgradeOptions {
  metrics: ProxyMetrics;
  pools: UpstreamPools;
  idleMs?: number;
  connectTimeoutMs?: number;
  table(): InboundUpgradeTable | undefined;
  /** The listener's request stats for a peer (cached per connection and config). */
  statsFor(peer: InboundPeer): StatsByCode;
  /** The listener's protocol-neutral entry; its forward calls forward() back. */
  serve(x: Exchange, peer: InboundPeer): void;
}

export class InboundUpgrades {
  readonly tunnels = new Tunnels();
  readonly #o: InboundUpgradeOptions;
  readonly #stats: UpgradeStatsTable;
  readonly #counters: ConnectionCounters;

  constructor(o: InboundUpgradeOptions) {
    this.#o = o;
    this.#stats = new UpgradeStatsTable(o.metrics, "inbound");
    this.#counters = new ConnectionCounters(o.metrics, "inbound");
  }

  /** The edge's 'upgrade' event: read like any request, then served by the listener. */
  accept(edge: HttpEdge, req: IncomingMessage, socket: Socket, head: Buffer): void {
    const peer = peerOf(socket) as InboundPeer;
    const x = new UpgradeExchange(req, socket, head, edge, this.#o.statsFor(peer), (u) =>
      this.#statsOf(u)?.outcome("refused"),
    );
    x.peer = peer;
    if (!x.readUpgrade(undefined)) return;
    this.#o.serve(x, peer);
  }

  #statsOf(x: UpgradeExchange) {
    const t = this.#o.table();
    if (t === undefined) return undefined;
    const peer = x.peer as InboundPeer;
    // A peer from another trust domain is not the local service its name says: counted as unknown.
    const foreign = peer.trustDomain !== undefined && peer.trustDomain !== t.trustDomain;
    return this.#stats.get(t.version, foreign ? "unknown" : peer.service, t.destination, x.protocol);
  }

  /** The listener's forward to the app, for an upgrade: a dedicated connection, then the tunnel. */
  forward(x: UpgradeExchange, app: UpstreamPool, hop: Hop, responseHeadersMs: number): void {
    const stats = this.#statsOf(x);
    if (stats === undefined)
      return x.reply("not_ready", "the proxy has no config from the control plane yet");
    x.takeOver();
    const headers = x.hopHeaders(hop);
    headers.push("connection", "upgrade", "upgrade", x.upgrade as string);
    const forward = new UpgradeForward(
      x,
      x.socket,
      x.clientHead,
      { notSent: () => false, answered: () => {}, closed: () => {} },
      {
        idleMs: this.#o.idleMs ?? DEFAULT_UPGRADE_IDLE_MS,
        stats,
        tunnels: this.tunnels,
        setTimer: (fn, ms) => setTimeout(fn, ms),
        clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
      },
    );
    forward.start({
      connect: createConnector(
        app.endpoint,
        this.#o.pools.clientTls,
        this.#counters,
        this.#o.connectTimeoutMs,
      ),
      method: x.method,
      path: x.target,
      headers,
      responseHeadersMs,
    });
  }
}
