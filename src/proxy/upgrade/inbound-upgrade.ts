// Upgrade requests (WebSocket, ...) at the inbound listener: from a verified mesh peer (mTLS) or, in
// PERMISSIVE mode, a plaintext one. The same checks as any inbound request — head, trust domain,
// rate limit (an upgrade takes one token) — then the request goes to the app in plaintext on a
// dedicated connection (tunnel.ts), with X-Forwarded-Client-Cert from the verified peer. The wait
// for the app's 101 is the caller's route deadline (x-weft-deadline-ms from a verified peer), else
// the listener's default.

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { DEADLINE_HEADER, Exchange, parseDeadline, type UpstreamTimeouts } from "../http/exchange.ts";
import { checkRequestHead, scanRequestHeaders } from "../http/request-head.ts";
import { parseAbsoluteForm } from "../http/request-target.ts";
import type { HttpEdge } from "../http/server-edge.ts";
import type { CounterSeries } from "../metrics/families.ts";
import type { ProxyMetrics, StatsByCode } from "../metrics/registry.ts";
import type { InboundPeer } from "../inbound/peer.ts";
import type { RateLimiter } from "../inbound/rate-limit.ts";
import { ConnectionCounters, createConnector } from "../transport/connector.ts";
import type { UpstreamPool, UpstreamPools } from "../transport/upstream-pools.ts";
import { DEFAULT_UPGRADE_IDLE_MS, UpgradeForward, clientResponse, closeAfterResponse } from "./tunnel.ts";
import { Tunnels } from "./tunnels.ts";
import { protocolOf, upgradeBodyRefusal } from "./upgrade-head.ts";
import { UpgradeStatsTable } from "./upgrade-stats.ts";

/** What an upgrade needs of the inbound listener's compiled table. */
export interface InboundUpgradeTable {
  readonly version: string;
  readonly app: UpstreamPool;
  readonly appLabel: string;
  readonly destination: string;
  readonly trustDomain: string;
  readonly limiter: RateLimiter | undefined;
  readonly limitDetail: string;
  limitedFor(source: string): CounterSeries;
  statsFor(source: string): StatsByCode;
}

export interface InboundUpgradeOptions {
  metrics: ProxyMetrics;
  pools: UpstreamPools;
  timeouts: UpstreamTimeouts;
  timeoutLimit: string | undefined;
  idleMs?: number;
  connectTimeoutMs?: number;
  notReadyStats: StatsByCode;
  table(): InboundUpgradeTable | undefined;
  peer(socket: Socket): InboundPeer;
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

  handle(edge: HttpEdge, req: IncomingMessage, socket: Socket, head: Buffer): void {
    const t = this.#o.table();
    const peer = this.#o.peer(socket);
    const foreign = t !== undefined && peer.trustDomain !== undefined && peer.trustDomain !== t.trustDomain;
    const source = foreign ? "unknown" : peer.service;
    const res = clientResponse(req, socket);
    const x = new Exchange(req, res, edge, t === undefined ? this.#o.notReadyStats : t.statsFor(source));
    x.peer = peer;
    const protocol = protocolOf(req.headers.upgrade);
    const stats = t === undefined ? undefined : this.#stats.get(t.version, source, t.destination, protocol);
    const refuse = (code: Parameters<Exchange["reply"]>[0], detail: string) => {
      stats?.outcome("refused");
      x.reply(code, detail, true);
      closeAfterResponse(res, socket);
    };

    const url = req.url as string;
    let authority: string | undefined;
    if (url.charCodeAt(0) === 47 /* / */) x.target = url;
    else {
      const abs = parseAbsoluteForm(url);
      if ("error" in abs) return refuse("bad_request", "malformed request target");
      authority = abs.authority;
      x.target = abs.target;
    }
    scanRequestHeaders(req.rawHeaders, x.headers, x);
    const bad = checkRequestHead(req, x, authority !== undefined) ?? upgradeBodyRefusal(x);
    if (bad !== undefined) return refuse("bad_request", bad);
    if (t === undefined || stats === undefined)
      return refuse("not_ready", "the proxy has no config from the control plane yet");
    if (foreign) {
      return refuse(
        "untrusted_peer",
        `peer ${peer.id} is from trust domain ${JSON.stringify(peer.trustDomain)}; this mesh is ${JSON.stringify(t.trustDomain)}`,
      );
    }
    if (t.limiter !== undefined) {
      const waitMs = t.limiter.take(peer.id ?? "");
      if (waitMs > 0) {
        t.limitedFor(peer.service).value++;
        res.setHeader("retry-after", String(Math.ceil(waitMs / 1000)));
        return refuse("rate_limited", t.limitDetail);
      }
    }

    x.upstream = t.appLabel;
    if (peer.xfcc !== undefined) x.headers.push("x-forwarded-client-cert", peer.xfcc);
    const proto = x.forwardedProto ?? (peer.id === undefined ? "http" : "https");
    let responseHeadersMs = this.#o.timeouts.responseHeadersMs;
    x.timeoutLimit = this.#o.timeoutLimit;
    if (x.deadline !== undefined && peer.id !== undefined) {
      const ms = parseDeadline(x.deadline);
      if (ms !== undefined) {
        responseHeadersMs = ms;
        x.timeoutLimit = `the deadline from ${peer.service}'s route timeouts, sent by its sidecar as ${DEADLINE_HEADER}`;
      }
    }
    const headers = x.hopHeaders({
      host: authority ?? (x.host as string),
      clientAddress: peer.address,
      proto,
    });
    headers.push("connection", "upgrade", "upgrade", x.upgrade as string);
    const forward = new UpgradeForward(
      x,
      socket,
      head,
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
        t.app.endpoint,
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
