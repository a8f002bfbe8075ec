// Keep-alive connection pools, one per upstream endpoint (address, port, expected identity). They
// outlive config changes: each compile marks the endpoints it uses and sync() closes the pools of
// endpoints that disappeared (gracefully: in-flight requests finish). Renewed certificates reach
// new connections through ClientTls; existing connections keep the one they were made with.

import { createRequire } from "node:module";
import type { Pool } from "undici";
import type { ProxyMetrics, Direction } from "../metrics/registry.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { ClientTls } from "./client-tls.ts";
import { ConnectionCounters, createConnector, endpointKey, type EndpointAddress } from "./connector.ts";
import { AlpnPool } from "./alpn-pool.ts";
import { H1Pool } from "./h1-pool.ts";
import { H2Pool } from "./h2-pool.ts";
import { ALPN_MESH_CLIENT } from "../tls/secure-context.ts";
import type { UpstreamDispatcher } from "./upstream.ts";

// undici costs ~29 MB of RSS once loaded (its wasm parser); load it only when asked for.
const requireLazily = createRequire(import.meta.url);
function undiciPool(): typeof Pool {
  return (requireLazily("undici") as typeof import("undici")).Pool;
}

export interface PoolOptions {
  /** Idle keep-alive when the upstream sends no Keep-Alive hint (ms). */
  keepAliveTimeoutMs?: number;
  /** Upper bound for an upstream's Keep-Alive hint (ms). */
  keepAliveMaxTimeoutMs?: number;
  connectTimeoutMs?: number;
  /**
   * What carries requests: "h1", weft's own HTTP/1.1 pool (default, measured faster), or "undici"
   * (undici's Pool, kept to compare against — see docs/proxy.md).
   */
  transport?: "h1" | "undici";
}

export interface UpstreamPool {
  readonly key: string;
  readonly endpoint: EndpointAddress;
  /** "address:port", for error details. */
  readonly label: string;
  readonly dispatcher: UpstreamDispatcher;
  /** Circuit-breaker connection limits for this endpoint (weft's own transport only). */
  setLimits(maxConnections: number, maxPendingRequests: number): void;
}

export class UpstreamPools {
  readonly clientTls: ClientTls;
  readonly #pools = new Map<string, UpstreamPool>();
  readonly #counters: ConnectionCounters;
  readonly #opts: PoolOptions;
  #marked = new Set<string>();

  constructor(opts: { tls: Source<TlsMaterial>; metrics: ProxyMetrics; direction: Direction } & PoolOptions) {
    this.clientTls = new ClientTls(opts.tls);
    this.#counters = new ConnectionCounters(opts.metrics, opts.direction);
    this.#opts = opts;
  }

  /**
   * The pool for an endpoint, created on first use; marks it as in use for the next sync(). An mTLS
   * endpoint (a peer sidecar) negotiates h2 or http/1.1 by ALPN (alpn-pool.ts); a plaintext one is
   * spoken to in HTTP/1.1, or over h2c with prior knowledge when `protocol` is "h2c" (an app's
   * Service port declared http2 or grpc).
   */
  get(ep: EndpointAddress, protocol: "http1" | "h2c" = "http1"): UpstreamPool {
    const key = protocol === "h2c" ? `${endpointKey(ep)}|h2c` : endpointKey(ep);
    this.#marked.add(key);
    let p = this.#pools.get(key);
    if (p === undefined) {
      const endpoint = { address: ep.address, port: ep.port, identity: ep.identity };
      const origin = `http://${ep.address.includes(":") ? `[${ep.address}]` : ep.address}:${ep.port}`;
      const dispatcher = this.#dispatcherFor(endpoint, origin, protocol);
      p = {
        key,
        endpoint,
        label: `${ep.address}:${ep.port}`,
        dispatcher,
        setLimits(maxConnections: number, maxPending: number) {
          if (!(
            dispatcher instanceof H1Pool ||
            dispatcher instanceof AlpnPool ||
            dispatcher instanceof H2Pool
          ))
            return;
          dispatcher.setLimits(maxConnections, maxPending);
        },
      };
      this.#pools.set(key, p);
    }
    return p;
  }

  #dispatcherFor(endpoint: EndpointAddress, origin: string, protocol: "http1" | "h2c"): UpstreamDispatcher {
    const o = this.#opts;
    const connect = createConnector(endpoint, this.clientTls, this.#counters, o.connectTimeoutMs);
    const keepAliveTimeoutMs = o.keepAliveTimeoutMs ?? 4_000;
    const keepAliveMaxTimeoutMs = o.keepAliveMaxTimeoutMs ?? 600_000;
    const authority = origin.slice("http://".length);
    if (o.transport === "undici") {
      return new (undiciPool())(origin, {
        connect: connect as unknown as Pool.Options["connect"],
        connections: null,
        pipelining: 1,
        keepAliveTimeout: keepAliveTimeoutMs,
        keepAliveMaxTimeout: keepAliveMaxTimeoutMs,
      }) as unknown as UpstreamDispatcher;
    }
    if (endpoint.identity !== undefined) {
      const negotiate = createConnector(
        endpoint,
        this.clientTls,
        this.#counters,
        o.connectTimeoutMs,
        ALPN_MESH_CLIENT,
      );
      return new AlpnPool({
        negotiate,
        http1: connect,
        authority,
        keepAliveTimeoutMs,
        keepAliveMaxTimeoutMs,
      });
    }
    if (protocol === "h2c") return new H2Pool(connect, { scheme: "http", authority });
    return new H1Pool(connect, { keepAliveTimeoutMs, keepAliveMaxTimeoutMs });
  }

  /** Closes pools not requested by get() since the previous sync(); returns how many closed. */
  sync(): number {
    let closed = 0;
    for (const [key, p] of this.#pools) {
      if (this.#marked.has(key)) continue;
      this.#pools.delete(key);
      this.clientTls.forget(key);
      closed++;
      p.dispatcher.close().catch(() => {});
    }
    this.#marked = new Set();
    return closed;
  }

  get size(): number {
    return this.#pools.size;
  }

  has(ep: EndpointAddress): boolean {
    return this.#pools.has(endpointKey(ep));
  }

  /** Closes every pool: gracefully, then forcefully after `graceMs`. */
  async close(graceMs = 5_000): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.clientTls.close();
    await Promise.all(
      pools.map(async (p) => {
        const timer = setTimeout(() => p.dispatcher.destroy().catch(() => {}), graceMs);
        try {
          await p.dispatcher.close();
        } catch {
          // destroyed meanwhile
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }

  /** Closes every pool now, aborting in-flight requests. */
  async destroy(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.clientTls.close();
    await Promise.all(pools.map((p) => p.dispatcher.destroy().catch(() => {})));
  }
}
