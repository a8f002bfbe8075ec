// The client side of TCP proxying, shared by every entry into it (the --upstream ports of
// upstream-port.ts, CONNECT to a tcp port through the outbound listener): a (service, port) target,
// resolved against the current snapshot, and the path of one connection to it.
//
// A connection: circuit breaker (the cluster's maxConnections) → pick an endpoint with the cluster's
// balancer (connect backoff and outlier detection see each connect's outcome) → connect
// (tunnel-connect.ts: mTLS tunnel to its sidecar, or plain TCP to a static workload) → on failure,
// another endpoint (at most MAX_RESENDS more; nothing of the client's was read yet) → splice. The
// client gets a closed connection when nothing can be reached: TCP has no error to send.
//
// Targets are built lazily, once per (service, port) and snapshot; a target's endpoint state (load,
// backoff, ejections) and its open-connection count carry over to the next snapshot's target.
// weft_tcp_* handles are bound per connection: a destination that left the config loses its series
// (ProxyMetrics.retainDestinations keeps those with connections open; the last one to end drops them).

import type { Socket } from "node:net";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { EndpointSet, type EndpointHandle } from "../balancer/endpoint-set.ts";
import type { LocalReplyCode } from "../errors.ts";
import type { CounterSeries } from "../metrics/families.ts";
import type { ProxyMetrics, TcpStats } from "../metrics/registry.ts";
import { MAX_RESENDS } from "../outbound/retry.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { ClientTls } from "../transport/client-tls.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS, endpointKey } from "../transport/connector.ts";
import { DEFAULT_TCP_IDLE_TIMEOUT_MS, splice } from "./splice.ts";
import { connectTunnel, type TunnelTarget } from "./tunnel-connect.ts";

export interface TcpProxyOptions {
  config: Source<ProxySnapshot>;
  tls: Source<TlsMaterial>;
  metrics: ProxyMetrics;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  log?: (msg: string) => void;
}

/** Open connections to one target, shared by its successive versions (the circuit breaker's count). */
interface Shared {
  active: number;
}

/** One tcp service port under one snapshot. */
export interface TcpTarget {
  /** "name.namespace:port". */
  readonly key: string;
  /** "name.namespace" of the calling proxy's service and of the destination (metric labels). */
  readonly source: string;
  readonly destination: string;
  readonly endpoints: EndpointSet<TunnelTarget>;
  readonly maxConnections: number;
  readonly shared: Shared;
  readonly overflow: CounterSeries;
  readonly connectFailures: CounterSeries;
}

/** Told once whether a connection was served (undefined) or why not, before anything else is written. */
export type ConnectAnswer = (refusal: { code: LocalReplyCode; detail: string } | undefined) => void;

function refuse(
  socket: Socket,
  answer: ConnectAnswer | undefined,
  code: LocalReplyCode,
  detail: string,
): void {
  if (answer === undefined || socket.destroyed) return void socket.destroy();
  answer({ code, detail });
}

export class TcpProxy {
  readonly #opts: TcpProxyOptions;
  readonly #clientTls: ClientTls;
  readonly #sockets = new Set<Socket>();
  #idleWaiters: (() => void)[] = [];
  #snapshot: ProxySnapshot | undefined;
  /** Targets built under the current snapshot, by "name.namespace:port". */
  #targets = new Map<string, TcpTarget>();
  /** The latest target built for each key, whatever the snapshot: what a new one inherits from. */
  readonly #latest = new Map<string, TcpTarget>();

  constructor(opts: TcpProxyOptions) {
    this.#opts = opts;
    this.#clientTls = new ClientTls(opts.tls);
  }

  /**
   * The target for `service` ("name", "name.namespace" or any of its host names) and `port` (default
   * its first declared port), or undefined when that port is not declared `tcp` (or unknown). Only
   * declared tcp ports are kept, so what callers ask for cannot grow memory.
   */
  target(service: string, port?: number): TcpTarget | undefined {
    const s = this.#opts.config.current();
    if (s === undefined) return undefined;
    // A new snapshot object, not a new version: versions are content hashes and repeat (A → B → A),
    // while B's config change dropped metric series that A's targets had bound.
    if (s !== this.#snapshot) {
      this.#snapshot = s;
      this.#targets = new Map();
    }
    const svc = s.outbound[service] ?? Object.values(s.outbound).find((o) => o.hosts.includes(service));
    const ports = svc?.ports ?? [];
    const p = port ?? ports[0]?.port;
    if (svc === undefined || p === undefined || ports.find((d) => d.port === p)?.protocol !== "tcp")
      return undefined;
    const key = `${svc.name}.${svc.namespace}:${p}`;
    let t = this.#targets.get(key);
    if (t === undefined) {
      t = this.#build(s, key, `${svc.name}.${svc.namespace}`, p, ports[0].port);
      if (t === undefined) return undefined;
      this.#targets.set(key, t);
      this.#latest.set(key, t);
    }
    return t;
  }

  #build(s: ProxySnapshot, key: string, cluster: string, port: number, first: number): TcpTarget | undefined {
    const spec = s.clusters[cluster];
    if (spec === undefined) return undefined;
    const source = `${s.proxy.service}.${s.proxy.namespace}`;
    const destination = `${spec.service}.${spec.namespace}`;
    const inputs = spec.endpoints.map((ep) => {
      // A static workload (no sidecar) serves its first port on Workload.port, others on their own number.
      const value: TunnelTarget = {
        address: ep.address,
        port: ep.identity !== undefined || port === first ? ep.port : port,
        identity: ep.identity,
        servicePort: port,
      };
      return { value, key: endpointKey(value), zone: ep.zone };
    });
    const m = this.#opts.metrics;
    const endpoints = new EndpointSet<TunnelTarget>(inputs, spec.policy, {
      localZone: s.proxy.zone,
      events: {
        onEject: (_key, reason) => {
          m.ejections.series(destination, reason).inc();
          m.ejectedEndpoints.series(destination).inc();
        },
        onReturn: () => m.ejectedEndpoints.series(destination).dec(),
      },
    });
    const before = this.#latest.get(key);
    if (before !== undefined) endpoints.inheritFrom(before.endpoints);
    return {
      key,
      source,
      destination,
      endpoints,
      maxConnections: spec.policy?.circuitBreaker?.maxConnections ?? 0,
      shared: before?.shared ?? { active: 0 },
      overflow: m.circuitOverflows.series(source, destination, "max_connections"),
      connectFailures: m.upstreamConnectFailures.series("outbound", "tcp_tunnel"),
    };
  }

  /**
   * Proxies `socket` (paused, nothing read) to `t`. Without `answer` a connection that cannot be
   * served is closed; with it (CONNECT), `answer` says first whether it was (undefined) or why not.
   */
  serve(socket: Socket, t: TcpTarget, answer?: ConnectAnswer): void {
    socket.on("error", () => socket.destroy());
    this.#track(socket);
    if (t.maxConnections > 0 && t.shared.active >= t.maxConnections) {
      t.overflow.value++;
      return refuse(socket, answer, "circuit_open", `${t.key}: ${t.maxConnections} connections already open`);
    }
    t.shared.active++;
    socket.once("close", () => t.shared.active--);
    this.#attempt(socket, t, undefined, 0, answer);
  }

  #attempt(
    down: Socket,
    t: TcpTarget,
    exclude: EndpointHandle<TunnelTarget> | undefined,
    resends: number,
    answer: ConnectAnswer | undefined,
  ): void {
    const h = t.endpoints.pick(undefined, exclude);
    if (h === undefined) return refuse(down, answer, "upstream_unavailable", `${t.key} has no endpoints`);
    if (down.destroyed) return;
    t.endpoints.start(h);
    const started = performance.now();
    const timeout = this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    connectTunnel(h.value, this.#clientTls, timeout, (err, up) => {
      const ms = performance.now() - started;
      if (err !== undefined || up === undefined) {
        t.endpoints.end(h, "connect", ms);
        t.connectFailures.value++;
        if (resends < MAX_RESENDS && t.endpoints.size > 1 && !down.destroyed)
          return this.#attempt(down, t, h, resends + 1, answer);
        const why = err?.message ?? "no connection";
        this.#opts.log?.(`tcp to ${t.key}: ${why}`);
        return refuse(down, answer, "upstream_unavailable", `${t.key}: ${why}`);
      }
      if (down.destroyed) {
        // The client left while we connected.
        t.endpoints.end(h, "local", ms);
        return void up.destroy();
      }
      // The connect succeeded (outlier detection and backoff learn it now); the endpoint stays
      // loaded with this connection until it closes (LeastRequest balances open connections).
      t.endpoints.end(h, "success", ms);
      t.endpoints.start(h);
      this.#track(up);
      answer?.(undefined);
      // Bound per connection (a handful of map lookups next to a TLS handshake): a config change may
      // have dropped the destination's series since the target was built, and this binds them again.
      const stats = this.#opts.metrics.tcpStats("outbound", t.source, t.destination);
      splice(down, up, {
        stats,
        idleTimeoutMs: this.#opts.idleTimeoutMs ?? DEFAULT_TCP_IDLE_TIMEOUT_MS,
        onEnd: () => {
          t.endpoints.end(h, "local", 0);
          this.#forgetIfGone(t, stats);
        },
      });
    });
  }

  /**
   * A connection to `t` ended: if it was the last one and `t`'s destination has left the config, its
   * weft_tcp_* series go too (the config change kept them while connections were open).
   */
  #forgetIfGone(t: TcpTarget, stats: TcpStats): void {
    if (stats.active.value > 0) return;
    const s = this.#opts.config.current();
    if (s === undefined || s.clusters[t.destination] !== undefined) return;
    this.#opts.metrics.dropTcpStats("outbound", t.source, t.destination);
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => {
      this.#sockets.delete(socket);
      if (this.#sockets.size > 0) return;
      const w = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const fn of w) fn();
    });
  }

  /** Waits (at most `timeoutMs`) for open connections to finish, then cuts the rest. */
  async drain(timeoutMs = 5_000): Promise<void> {
    if (this.#sockets.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#idleWaiters.push(r)),
        new Promise<void>((r) => (timer = setTimeout(r, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    this.close();
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
    this.#clientTls.close();
  }
}
