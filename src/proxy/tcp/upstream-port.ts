// An explicit upstream port (`--upstream svc=port`, `--upstream svc:servicePort=port`): one loopback
// listener for one service port, whose protocol the Service declares. Each new connection is looked
// at once, before any byte of it is read: to a `tcp` port it becomes a proxied TCP connection; to any
// other it is handed to the HTTP listener for that service (the `http` callback). Nothing waits for
// the client to speak, so server-speaks-first protocols (MySQL, SMTP, a Redis greeting) just work.
//
// A TCP connection: circuit breaker (the cluster's maxConnections) → pick an endpoint with the
// cluster's balancer (connect backoff and outlier detection see each connect's outcome) → connect
// (tunnel-connect.ts: mTLS tunnel to its sidecar, or plain TCP to a static workload) → on failure,
// another endpoint (at most MAX_RESENDS more; nothing of the client's was read yet) → splice.
// The client gets a closed connection when nothing can be reached: TCP has no error to send.

import net from "node:net";
import type { AddressInfo, Socket } from "node:net";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { EndpointSet, type EndpointHandle } from "../balancer/endpoint-set.ts";
import type { ProxyListener } from "../http/listener-lifecycle.ts";
import type { CounterSeries } from "../metrics/families.ts";
import type { ProxyMetrics, TcpStats } from "../metrics/registry.ts";
import { MAX_RESENDS } from "../outbound/retry.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { ClientTls } from "../transport/client-tls.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS, endpointKey } from "../transport/connector.ts";
import { DEFAULT_TCP_IDLE_TIMEOUT_MS, splice } from "./splice.ts";
import { connectTunnel, type TunnelTarget } from "./tunnel-connect.ts";

export interface UpstreamPortOptions {
  config: Source<ProxySnapshot>;
  tls: Source<TlsMaterial>;
  metrics: ProxyMetrics;
  /** "name" or "name.namespace". */
  service: string;
  /** The service port; default the Service's first declared port. */
  servicePort?: number;
  /** Takes a connection to a port that is not `tcp` (paused; the callee resumes it). */
  http: (socket: Socket) => void;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  log?: (msg: string) => void;
}

interface TcpCluster {
  readonly name: string;
  readonly endpoints: EndpointSet<TunnelTarget>;
  readonly maxConnections: number;
  readonly stats: TcpStats;
  readonly overflow: CounterSeries;
  readonly connectFailures: CounterSeries;
}

/** What the port does under one snapshot: "http" (hand over), or TCP to a cluster. */
type PortTable = { version: string; mode: "http" } | { version: string; mode: "tcp"; cluster: TcpCluster };

export class UpstreamPort implements ProxyListener {
  readonly server: net.Server;
  readonly #opts: UpstreamPortOptions;
  readonly #clientTls: ClientTls;
  readonly #sockets = new Set<Socket>();
  /** Open TCP connections per cluster name: the circuit breaker's count, kept across config changes. */
  readonly #active = new Map<string, number>();
  #idleWaiters: (() => void)[] = [];
  readonly #unsubscribe: () => void;
  #table: PortTable | undefined;

  constructor(opts: UpstreamPortOptions) {
    this.#opts = opts;
    this.#clientTls = new ClientTls(opts.tls);
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) =>
      this.#accept(s),
    );
    const current = opts.config.current();
    if (current) this.#apply(current);
    this.#unsubscribe = opts.config.subscribe((s) => this.#apply(s));
  }

  /** Whether connections go to TCP proxying under the current config (for tests and /config views). */
  get mode(): "http" | "tcp" | undefined {
    return this.#table?.mode;
  }

  #apply(s: ProxySnapshot): void {
    if (s.version === this.#table?.version) return;
    const svc =
      s.outbound[this.#opts.service] ??
      Object.values(s.outbound).find((o) => o.hosts.includes(this.#opts.service));
    const ports = svc?.ports ?? [];
    const port = this.#opts.servicePort ?? ports[0]?.port;
    const declared = ports.find((p) => p.port === port);
    const spec = svc && s.clusters[`${svc.name}.${svc.namespace}`];
    if (svc === undefined || declared?.protocol !== "tcp" || spec === undefined || port === undefined) {
      this.#table = { version: s.version, mode: "http" };
      return;
    }
    const first = ports[0].port;
    const source = `${s.proxy.service}.${s.proxy.namespace}`;
    const destination = `${spec.service}.${spec.namespace}`;
    const inputs = spec.endpoints.map((ep) => {
      // A static workload (no sidecar) serves its first port on Workload.port, others on their own number.
      const target: TunnelTarget = {
        address: ep.address,
        port: ep.identity !== undefined || port === first ? ep.port : port,
        identity: ep.identity,
        servicePort: port,
      };
      return { value: target, key: endpointKey(target), zone: ep.zone };
    });
    const endpoints = new EndpointSet<TunnelTarget>(inputs, spec.policy, {
      localZone: s.proxy.zone,
      events: {
        onEject: (_key, reason) => {
          this.#opts.metrics.ejections.series(destination, reason).inc();
          this.#opts.metrics.ejectedEndpoints.series(destination).inc();
        },
        onReturn: () => this.#opts.metrics.ejectedEndpoints.series(destination).dec(),
      },
    });
    const previous = this.#table?.mode === "tcp" ? this.#table.cluster : undefined;
    if (previous?.name === spec.name) endpoints.inheritFrom(previous.endpoints);
    const m = this.#opts.metrics;
    this.#table = {
      version: s.version,
      mode: "tcp",
      cluster: {
        name: spec.name,
        endpoints,
        maxConnections: spec.policy?.circuitBreaker?.maxConnections ?? 0,
        stats: m.tcpStats("outbound", source, destination),
        overflow: m.circuitOverflows.series(source, destination, "max_connections"),
        connectFailures: m.upstreamConnectFailures.series("outbound", "tcp_tunnel"),
      },
    };
  }

  #accept(socket: Socket): void {
    socket.on("error", () => socket.destroy());
    this.#track(socket);
    const t = this.#table;
    if (t === undefined) return void socket.destroy(); // no config yet: nothing to route to
    if (t.mode === "http") return this.#opts.http(socket);
    const c = t.cluster;
    const active = this.#active.get(c.name) ?? 0;
    if (c.maxConnections > 0 && active >= c.maxConnections) {
      c.overflow.value++;
      return void socket.destroy();
    }
    this.#active.set(c.name, active + 1);
    socket.once("close", () => this.#active.set(c.name, (this.#active.get(c.name) ?? 1) - 1));
    this.#attempt(socket, c, undefined, 0);
  }

  #attempt(
    down: Socket,
    c: TcpCluster,
    exclude: EndpointHandle<TunnelTarget> | undefined,
    resends: number,
  ): void {
    const h = c.endpoints.pick(undefined, exclude);
    if (h === undefined || down.destroyed) return void down.destroy();
    c.endpoints.start(h);
    const started = performance.now();
    const timeout = this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    connectTunnel(h.value, this.#clientTls, timeout, (err, up) => {
      const ms = performance.now() - started;
      if (err !== undefined || up === undefined) {
        c.endpoints.end(h, "connect", ms);
        c.connectFailures.value++;
        if (resends < MAX_RESENDS && c.endpoints.size > 1 && !down.destroyed)
          return this.#attempt(down, c, h, resends + 1);
        this.#opts.log?.(`tcp to ${c.name}: ${err?.message ?? "no connection"}`);
        return void down.destroy();
      }
      if (down.destroyed) {
        // The client left while we connected.
        c.endpoints.end(h, "local", ms);
        return void up.destroy();
      }
      // The connect succeeded (outlier detection and backoff learn it now); the endpoint stays
      // loaded with this connection until it closes (LeastRequest balances open connections).
      c.endpoints.end(h, "success", ms);
      c.endpoints.start(h);
      this.#track(up);
      splice(down, up, {
        stats: c.stats,
        idleTimeoutMs: this.#opts.idleTimeoutMs ?? DEFAULT_TCP_IDLE_TIMEOUT_MS,
        onEnd: () => c.endpoints.end(h, "local", 0),
      });
    });
  }

  async listen(port: number, host = "127.0.0.1"): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.removeListener("error", reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  address(): AddressInfo | undefined {
    return (this.server.address() as AddressInfo | null) ?? undefined;
  }

  /** Stops accepting; open connections get `timeoutMs` to finish, then are cut. */
  async drain(timeoutMs = 5_000): Promise<void> {
    this.#unsubscribe();
    if (this.server.listening) this.server.close();
    if (this.#sockets.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#idleWaiters.push(r)),
        new Promise<void>((r) => (timer = setTimeout(r, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    await this.close();
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

  async close(): Promise<void> {
    this.#unsubscribe();
    if (this.server.listening) this.server.close();
    for (const s of this.#sockets) s.destroy();
    this.#clientTls.close();
  }
}
