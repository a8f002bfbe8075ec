// What one request on a route with features carries through the route's filter chain
// (route-chain.ts): the exchange, the route, the backend once picked, the Host to send upstream
// (a URLRewrite may change it), and — once the replay buffer ran — the upstream head and a body that
// can be sent more than once (a ReplaySource, replay-source.ts). One object per such request; plain routes never make one.

import type { Readable } from "node:stream";
import type { Exchange } from "../pipeline/exchange.ts";
import type { ReplaySource } from "./replay-source.ts";
import type { UpstreamTimeouts } from "../pipeline/timeouts.ts";
import type { ListenerDefaults } from "./engine.ts";
import type { CompiledBackend, CompiledRoute, RouteCounters, RouteFeatures } from "./compile.ts";

/** Timers and randomness, injectable for tests. */
export interface RouteClock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
  random(): number;
}

export const REAL_CLOCK: RouteClock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  random: Math.random,
};

export class RouteContext {
  readonly x: Exchange;
  readonly route: CompiledRoute;
  readonly features: RouteFeatures;
  /** The service ("name.namespace"), for details. */
  readonly service: string;
  /** Authority the request named; the Host sent upstream unless a URLRewrite changes it. */
  host: string;
  readonly clientAddress: string | undefined;
  readonly timeouts: UpstreamTimeouts;
  /** The listener's settings, for the attempt engine (engine.ts). */
  readonly defaults: ListenerDefaults;
  readonly clock: RouteClock;
  /** Set by the backend stage (route-chain.ts), before any feature filter runs. */
  backend: CompiledBackend = undefined as unknown as CompiledBackend;
  /** The route's counters for the picked backend's destination. */
  counters: RouteCounters = undefined as unknown as RouteCounters;
  hashKey: string | undefined = undefined;
  /** The upstream head, once built (the replay buffer builds it; else the attempts do). */
  headers: string[] | undefined = undefined;
  /** The client's body, for a request sent once (no replay buffer in the chain), or null. */
  readonly body: Readable | null;
  /** Set by the replay buffer when there is a body: each attempt or mirror reads it from the start. */
  replay: ReplaySource | undefined = undefined;

  constructor(
    x: Exchange,
    route: CompiledRoute,
    service: string,
    host: string,
    defaults: ListenerDefaults,
    clock: RouteClock,
  ) {
    this.x = x;
    this.route = route;
    this.features = route.features as RouteFeatures;
    this.service = service;
    this.host = host;
    this.clientAddress = x.clientAddress;
    this.defaults = defaults;
    this.timeouts = defaults.timeouts;
    this.clock = clock;
    this.body = x.body;
  }

  /** The upstream head from the request as the filters left it (built once). */
  upstreamHeaders(): string[] {
    return (this.headers ??= this.x.hopHeaders({
      host: this.host,
      clientAddress: this.clientAddress,
      proto: "http",
    }));
  }
}
