// On-demand subscriptions, the proxy's side (docs/proxy.md, "On-demand config"). The proxy starts with
// its own config plus what it pre-loads (--reach, the services of its --upstream ports); the first
// time its app calls another destination, the outbound listener asks `wait(name, done)`: the name is
// subscribed on the config stream (once, however many requests wait for it) and `done` is called
// when a published snapshot has the Service ("found"), lists the name as `unresolved`, when the bound
// passes ("timeout"), or when the request is cancelled ("gone"). The wait is counted and timed
// (weft_discovery_requests_total, weft_discovery_wait_seconds).
//
// The set of names is bounded (least recently used evicted → unsubscribed). A name not used for the
// idle time is unsubscribed; usage costs the hot path one boolean write (the listener sets `used` on
// the compiled service it routed to), which a periodic sweep reads and clears — no per-request timer
// or allocation. Names survive a reconnect: the config client sends `names()` in every hello.

import type { ProxySnapshot } from "../../model/snapshot.ts";
import type { ProxyMetrics } from "../metrics/registry.ts";

/** "busy": as many names as the bound allows are being waited for already; not subscribed. */
export type DiscoveryResult = "found" | "unresolved" | "timeout" | "gone" | "busy";

/** What the running config says of a name: a service (with its usage flag), or nothing. */
export interface UsageFlag {
  used: boolean;
}

export interface SubscriptionClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(t: unknown): void;
}

export const SYSTEM_SUBSCRIPTION_CLOCK: SubscriptionClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout),
};

export const DEFAULT_DISCOVERY_TIMEOUT_MS = 3_000;
export const DEFAULT_SUBSCRIPTION_IDLE_MS = 10 * 60_000;
export const DEFAULT_MAX_SUBSCRIPTIONS = 1024;

export interface SubscriptionsOptions {
  /** The running snapshot: each one published may answer waits. */
  config: { current(): ProxySnapshot | undefined; subscribe(fn: (s: ProxySnapshot) => void): () => void };
  /** Sends on the config stream (when connected; names are re-sent in every hello anyway). */
  send: { subscribe(names: string[]): void; unsubscribe(names: string[]): void };
  /** The running config's service for a name (the outbound listener's host table), if any. */
  lookup: (name: string) => UsageFlag | undefined;
  metrics?: ProxyMetrics;
  timeoutMs?: number;
  idleMs?: number;
  maxNames?: number;
  clock?: SubscriptionClock;
}

interface Waiter {
  done: (r: DiscoveryResult) => void;
}

interface Pending {
  started: number;
  timer: unknown;
  waiters: Set<Waiter>;
}

export class Subscriptions {
  readonly timeoutMs: number;
  readonly idleMs: number;
  readonly maxNames: number;
  readonly #opts: SubscriptionsOptions;
  readonly #clock: SubscriptionClock;
  /** Subscribed names → when last seen used; Map order is least recently used first. */
  readonly #names = new Map<string, number>();
  readonly #pending = new Map<string, Pending>();
  readonly #unresolved = new Set<string>();
  readonly #off: () => void;
  #sweeper: unknown;

  constructor(opts: SubscriptionsOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? SYSTEM_SUBSCRIPTION_CLOCK;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_DISCOVERY_TIMEOUT_MS;
    this.idleMs = opts.idleMs ?? DEFAULT_SUBSCRIPTION_IDLE_MS;
    this.maxNames = opts.maxNames ?? DEFAULT_MAX_SUBSCRIPTIONS;
    const current = opts.config.current();
    if (current) this.#snapshot(current);
    this.#off = opts.config.subscribe((s) => this.#snapshot(s));
    // Expiry is coarse: a name idle for idleMs goes within a quarter of that more.
    const every = Math.min(60_000, Math.max(50, Math.floor(this.idleMs / 4)));
    this.#sweeper = this.#clock.setInterval(() => this.sweep(), every);
  }

  /** The names held, least recently used first (for hello and the admin's /config). */
  names(): string[] {
    return [...this.#names.keys()];
  }

  /** Whether the running config says `name` names no Service: answer no_route at once. */
  isUnresolved(name: string): boolean {
    return this.#unresolved.has(name);
  }

  /**
   * Waits for `name` (a subscriptionName) to be in the config or known unresolved; `done` is called
   * once. Returns the cancel: `done("gone")` now, if it had not been called.
   */
  wait(name: string, done: (r: DiscoveryResult) => void): () => void {
    if (this.#opts.lookup(name) !== undefined) {
      done("found");
      return noop;
    }
    if (this.#unresolved.has(name)) {
      done("unresolved");
      return noop;
    }
    let p = this.#pending.get(name);
    if (p === undefined && this.#pending.size >= this.maxNames) {
      // An app calling ever new names faster than they are answered: the set stays bounded.
      this.#count("busy", this.#clock.now());
      done("busy");
      return noop;
    }
    if (p === undefined) {
      const now = this.#clock.now();
      p = { started: now, timer: undefined, waiters: new Set() };
      this.#pending.set(name, p);
      const pending = p;
      p.timer = this.#clock.setTimeout(() => this.#settle(name, pending, "timeout"), this.timeoutMs);
      this.#add(name, now);
    }
    const w: Waiter = { done };
    p.waiters.add(w);
    const pending = p;
    return () => {
      if (!pending.waiters.delete(w)) return;
      this.#count("gone", pending.started);
      done("gone");
    };
  }

  /** Unsubscribes names not used for idleMs (called periodically; tests call it with their clock). */
  sweep(): void {
    const now = this.#clock.now();
    const expired: string[] = [];
    const used: string[] = [];
    // Read first, reorder after: a name moved to the end while the map is being walked would be
    // visited again (forever, if its flag said "used" every time).
    for (const [name, last] of this.#names) {
      const svc = this.#opts.lookup(name);
      if (svc?.used) {
        svc.used = false;
        used.push(name);
      } else if (now - last >= this.idleMs && !this.#pending.has(name)) expired.push(name);
    }
    for (const name of used) {
      this.#names.delete(name);
      this.#names.set(name, now); // most recently used: last in the map
    }
    if (expired.length === 0) return;
    for (const n of expired) this.#names.delete(n);
    this.#gauge();
    this.#opts.send.unsubscribe(expired);
  }

  stop(): void {
    this.#off();
    this.#clock.clearInterval(this.#sweeper);
    for (const [name, p] of this.#pending) this.#settle(name, p, "timeout");
  }

  #add(name: string, now: number): void {
    this.#names.set(name, now);
    const evicted: string[] = [];
    for (const n of this.#names.keys()) {
      if (this.#names.size - evicted.length <= this.maxNames) break;
      if (n !== name && !this.#pending.has(n)) evicted.push(n);
    }
    for (const n of evicted) this.#names.delete(n);
    this.#gauge();
    if (evicted.length > 0) this.#opts.send.unsubscribe(evicted);
    this.#opts.send.subscribe([name]);
  }

  #snapshot(s: ProxySnapshot): void {
    this.#unresolved.clear();
    for (const n of s.unresolved ?? []) this.#unresolved.add(n);
    for (const [name, p] of this.#pending) {
      if (this.#opts.lookup(name) !== undefined) this.#settle(name, p, "found");
      else if (this.#unresolved.has(name)) this.#settle(name, p, "unresolved");
    }
  }

  #settle(name: string, p: Pending, result: DiscoveryResult): void {
    if (this.#pending.get(name) !== p) return;
    this.#pending.delete(name);
    this.#clock.clearTimeout(p.timer);
    const waiters = [...p.waiters];
    p.waiters.clear();
    for (const w of waiters) {
      this.#count(result, p.started);
      w.done(result);
    }
  }

  #count(result: DiscoveryResult, started: number): void {
    const m = this.#opts.metrics;
    if (m === undefined) return;
    m.discoveryRequests.series(result).value++;
    m.discoveryWait.series().observe(Math.max(0, this.#clock.now() - started) / 1000);
  }

  #gauge(): void {
    const m = this.#opts.metrics;
    if (m !== undefined) m.subscriptions.series().value = this.#names.size;
  }
}

function noop(): void {}
