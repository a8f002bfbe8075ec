// The endpoints of one cluster and everything the sidecar learns about them while it sends
// requests: in-flight counts, latency (peak EWMA), consecutive failures and ejections, slow start.
// One set is built per config change (the balancing structures depend only on the endpoint list and
// the policy); `inheritFrom` then hands the learnt state over from the set it replaces. See
// docs/balancing.md for the algorithms and semantics; the comments here are about how. Outlier
// detection's per-endpoint rules are in outlier-detection.ts, the per-endpoint state in endpoint-state.ts.
//
// Per-endpoint state lives in an EndpointState object shared, by key, between a set and the set
// that replaces it. That matters for requests that straddle a config change: they were started on
// the old set and end on it, and with copied state the new set's in-flight count for that endpoint
// would never come down again. The old set forwards outcomes to its successor, so outlier detection
// only ever runs in the newest set and the ejection counters there stay exact.
//
// The request path (pick / start / end) allocates nothing and reads the clock only when something
// depends on time: an ejection, an endpoint in slow start or connect backoff, PeakEWMA.
//
// Connect backoff is always on, whatever the policy: an endpoint whose connection failed (refused,
// timed out, TLS handshake failed) is unreachable for CONNECT_BACKOFF_BASE_MS, doubling with each
// further failure up to CONNECT_BACKOFF_MAX_MS, and picks avoid it meanwhile (as Linkerd's endpoints
// go "not ready" while they reconnect). So an endpoint that fails fast never looks like the least
// loaded one; the first connection that works clears it.

import type { ClusterPolicy } from "../../model/snapshot.ts";
import {
  DEFAULT_MAGLEV_SIZE,
  DEFAULT_RING_SIZE,
  HashRing,
  MaglevTable,
  type HashTable,
} from "./consistent-hash.ts";
import { connectBackoffMs, cost, DEFAULT_RTT_MS, EndpointState, ewmaAt, observe } from "./endpoint-state.ts";
import { hash32 } from "./hash.ts";
import {
  beginEjection,
  countOutcome,
  maxEjected,
  type EjectionReason,
  type OutlierPolicy,
  type Outcome,
} from "./outlier-detection.ts";

// Tuning constants of the endpoint state, for callers (and tests) that import them from here.
export {
  CONNECT_BACKOFF_BASE_MS,
  CONNECT_BACKOFF_MAX_MS,
  DEFAULT_RTT_MS,
  EWMA_DECAY_MS,
} from "./endpoint-state.ts";

export interface EndpointInput<T> {
  value: T;
  /** "address:port", stable across config updates: state is carried over by it. */
  key: string;
  zone?: string;
}

export type { EjectionReason, Outcome } from "./outlier-detection.ts";

export interface EndpointSetEvents {
  onEject?(key: string, reason: EjectionReason): void;
  /**
   * The endpoint is back in rotation. Also called for an ejected endpoint that inheritFrom drops
   * (it left the cluster) or un-ejects (the new policy has no outlier detection), so that a gauge
   * counting onEject up and onReturn down stays right across config changes.
   */
  onReturn?(key: string): void;
}

export interface EndpointSetOptions {
  /** The proxy's zone (ProxyIdentity.zone), for locality-aware picking. */
  localZone?: string;
  /** Milliseconds; default performance.now. */
  now?: () => number;
  /** [0, 1); default Math.random. */
  random?: () => number;
  events?: EndpointSetEvents;
}

export interface EndpointDescription {
  /** The endpoint's pool key: "address:port" (plus the expected identity for mTLS endpoints). */
  endpoint: string;
  zone?: string;
  inflight: number;
  ejected: boolean;
  /** How much longer the ejection lasts. */
  ejectedForMs?: number;
  consecutiveFailures: number;
  /** Ejections so far (the next lasts one base ejection time longer). */
  ejections: number;
  /** PeakEWMA's current latency estimate. */
  latencyEwmaMs?: number;
  /** Connect backoff: how much longer picks avoid it after its connections failed. */
  unreachableForMs?: number;
  /** Connections that failed in a row (reset by the first one that works). */
  connectFailures?: number;
}

export interface EndpointHandle<T> {
  readonly value: T;
  readonly key: string;
  readonly zone: string | undefined;
  /** Requests started and not yet ended on this endpoint (across config changes). */
  readonly inflight: number;
}

/** Slow start: the weight an endpoint starts its ramp with. */
export const SLOW_START_MIN_WEIGHT = 0.1;

const ROUND_ROBIN = 0;
const RANDOM = 1;
const LEAST_REQUEST = 2;
const PEAK_EWMA = 3;
const RING_HASH = 4;
const MAGLEV = 5;

const ALGORITHMS: Record<string, number> = {
  RoundRobin: ROUND_ROBIN,
  Random: RANDOM,
  LeastRequest: LEAST_REQUEST,
  PeakEWMA: PEAK_EWMA,
  RingHash: RING_HASH,
  Maglev: MAGLEV,
};

class Handle<T> implements EndpointHandle<T> {
  readonly value: T;
  readonly key: string;
  readonly zone: string | undefined;
  readonly owner: EndpointSet<T>;
  /** In the proxy's zone (and locality is on). */
  readonly local: boolean;
  state: EndpointState;

  constructor(owner: EndpointSet<T>, input: EndpointInput<T>, local: boolean, now: number) {
    this.owner = owner;
    this.value = input.value;
    this.key = input.key;
    this.zone = input.zone;
    this.local = local;
    this.state = new EndpointState(now);
  }

  get inflight(): number {
    return this.state.inflight;
  }
}

/** The endpoints a pick chooses among: all of them, or those in the proxy's zone. */
class Group<T> {
  readonly handles: Handle<T>[];
  /** Round-robin position (LeastRequest and PeakEWMA take their first candidate from it too). */
  cursor: number;
  readonly table: HashTable | undefined;

  constructor(handles: Handle<T>[], start: number, table: HashTable | undefined) {
    this.handles = handles;
    this.cursor = handles.length === 0 ? 0 : Math.min(handles.length - 1, Math.floor(start * handles.length));
    this.table = table;
  }
}

export class EndpointSet<T> {
  readonly #handles: Handle<T>[];
  readonly #byKey = new Map<string, Handle<T>>();
  readonly #all: Group<T>;
  /** Present when locality applies: it is on, and the proxy's zone holds some but not all endpoints. */
  readonly #local: Group<T> | undefined;
  readonly #algorithm: number;
  readonly #outlier: OutlierPolicy | undefined;
  readonly #slowStartMs: number;
  readonly #minHealthyPercent: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #events: EndpointSetEvents | undefined;

  #ejected = 0;
  #ejectedLocal = 0;
  /** Earliest end of a current ejection (Infinity when none). */
  #nextReturnAt = Infinity;
  /** Endpoints in connect backoff, and the earliest end of one (Infinity when none). */
  #unreachable = 0;
  #nextReachableAt = Infinity;
  /** Latest end of a slow-start ramp in this set; 0 when no endpoint is ramping. */
  #rampUntil = 0;
  #successor: EndpointSet<T> | undefined;

  // The current pick's exclusions, in fields rather than closures so that pick allocates nothing.
  #ex1: Handle<T> | undefined;
  #ex2: Handle<T> | undefined;
  #honorEjection = false;

  constructor(items: EndpointInput<T>[], policy: ClusterPolicy | undefined, opts: EndpointSetOptions = {}) {
    this.#now = opts.now ?? performance.now.bind(performance);
    this.#random = opts.random ?? Math.random;
    this.#events = opts.events;
    this.#algorithm = ALGORITHMS[policy?.loadBalancer?.type ?? "LeastRequest"] ?? LEAST_REQUEST;
    const od = policy?.outlierDetection;
    this.#outlier = od && (od.consecutiveFailures > 0 || od.consecutiveGatewayErrors > 0) ? od : undefined;
    this.#slowStartMs = policy?.slowStartMs !== undefined && policy.slowStartMs > 0 ? policy.slowStartMs : 0;
    this.#minHealthyPercent = policy?.locality?.minHealthyPercent ?? 0;

    const zone = policy?.locality?.enabled ? opts.localZone : undefined;
    const now = this.#now();
    this.#handles = items.map((it) => new Handle(this, it, zone !== undefined && it.zone === zone, now));
    for (const h of this.#handles) if (!this.#byKey.has(h.key)) this.#byKey.set(h.key, h);

    const localHandles = this.#handles.filter((h) => h.local);
    const tableSize = policy?.loadBalancer?.tableSize;
    const tableOf = (hs: Handle<T>[]): HashTable | undefined => {
      const keys = hs.map((h) => h.key);
      if (this.#algorithm === RING_HASH) return new HashRing(keys, tableSize ?? DEFAULT_RING_SIZE);
      if (this.#algorithm === MAGLEV) return new MaglevTable(keys, tableSize ?? DEFAULT_MAGLEV_SIZE);
      return undefined;
    };
    // A random round-robin start, so that proxies (and a proxy after a config change) do not all
    // send their next request to the same endpoint.
    this.#all = new Group(this.#handles, this.#random(), tableOf(this.#handles));
    this.#local =
      localHandles.length > 0 && localHandles.length < this.#handles.length
        ? new Group(localHandles, this.#random(), tableOf(localHandles))
        : undefined;
  }

  get size(): number {
    return this.#handles.length;
  }

  /** Endpoints ejected as of the last pick (ejections end lazily, when a pick sees the clock past them). */
  get ejectedCount(): number {
    return this.#ejected;
  }

  /** What the proxy knows of each endpoint right now, for the admin port's /clusters. */
  describe(): EndpointDescription[] {
    const now = this.#now();
    return this.#handles.map((h) => {
      const s = h.state;
      const d: EndpointDescription = {
        endpoint: h.key,
        inflight: s.inflight,
        ejected: s.ejected && s.ejectedUntil > now,
        consecutiveFailures: s.failures,
        ejections: s.ejections,
      };
      if (h.zone !== undefined) d.zone = h.zone;
      if (d.ejected) d.ejectedForMs = Math.round(s.ejectedUntil - now);
      if (s.unreachable && s.unreachableUntil > now)
        d.unreachableForMs = Math.round(s.unreachableUntil - now);
      if (s.connectFailures > 0) d.connectFailures = s.connectFailures;
      if (this.#algorithm === PEAK_EWMA) d.latencyEwmaMs = Math.round(ewmaAt(s, now) * 100) / 100;
      return d;
    });
  }

  inheritFrom(previous: EndpointSet<T>): void {
    if (previous === this) return;
    const now = this.#now();
    const taken = new Set<EndpointState>();
    for (const h of this.#handles) {
      const before = previous.#byKey.get(h.key);
      if (before !== undefined && !taken.has(before.state)) {
        h.state = before.state;
        taken.add(before.state);
      } else if (this.#slowStartMs > 0) {
        h.state.rampFrom = now; // new to the cluster: ramp up
      }
    }
    for (const h of previous.#handles) {
      if (h.state.ejected && !taken.has(h.state)) {
        h.state.ejected = false;
        previous.#events?.onReturn?.(h.key);
      }
    }
    this.#ejected = 0;
    this.#ejectedLocal = 0;
    this.#nextReturnAt = Infinity;
    this.#unreachable = 0;
    this.#nextReachableAt = Infinity;
    this.#rampUntil = 0;
    for (const h of this.#handles) {
      const s = h.state;
      if (s.unreachable) {
        this.#unreachable++;
        if (s.unreachableUntil < this.#nextReachableAt) this.#nextReachableAt = s.unreachableUntil;
      }
      if (s.ejected && this.#outlier === undefined) {
        s.ejected = false;
        s.returnedAt = now;
        this.#events?.onReturn?.(h.key);
      } else if (s.ejected) {
        this.#ejected++;
        if (h.local) this.#ejectedLocal++;
        if (s.ejectedUntil < this.#nextReturnAt) this.#nextReturnAt = s.ejectedUntil;
      }
      if (this.#slowStartMs > 0 && s.rampFrom === s.rampFrom) {
        this.#rampUntil = Math.max(this.#rampUntil, s.rampFrom + this.#slowStartMs);
      }
    }
    previous.#successor = this;
  }

  pick(hashKey?: string, exclude?: EndpointHandle<T>): EndpointHandle<T> | undefined {
    const n = this.#handles.length;
    if (n === 0) return undefined;
    const live = this.#successor === undefined;
    let now = 0;
    if (this.#ejected > 0 || this.#unreachable > 0 || this.#rampUntil > 0 || this.#algorithm === PEAK_EWMA) {
      now = this.#now();
      if (live && this.#ejected > 0 && now >= this.#nextReturnAt) this.#endEjections(now);
      if (live && this.#unreachable > 0 && now >= this.#nextReachableAt) this.#endBackoffs(now);
      if (this.#rampUntil > 0 && now >= this.#rampUntil) this.#rampUntil = 0;
    }
    if (n === 1) return this.#handles[0];

    let ex: Handle<T> | undefined;
    if (exclude !== undefined) {
      const h = exclude as Handle<T>;
      ex = h.owner === this ? h : this.#byKey.get(h.key);
    }
    // A superseded set leaves the ejection bookkeeping to its successor (which updates the shared
    // states) and simply skips whatever is ejected.
    this.#honorEjection = this.#ejected > 0 || this.#unreachable > 0 || !live;
    this.#ex1 = ex;
    this.#ex2 = undefined;
    let h = this.#pickAvailable(hashKey, now);
    if (h === undefined) {
      // Every endpoint is ejected or unreachable (or the only one left is excluded): better one of
      // them than no answer — the verdict may be stale, and the request fails anyway otherwise.
      this.#honorEjection = false;
      h = this.#pickIn(this.#all, hashKey, now) ?? ex ?? this.#handles[0];
    } else if (this.#rampUntil > 0 && this.#all.table === undefined) {
      // Slow start by admission; not with consistent hashing, where it would send a key to
      // different endpoints from one request to the next.
      const f = this.#rampFactor(h.state, now);
      if (f < 1 && this.#random() >= f) {
        this.#ex2 = h;
        h = this.#pickAvailable(hashKey, now) ?? h;
      }
    }
    this.#ex1 = undefined;
    this.#ex2 = undefined;
    return h;
  }

  start(h: EndpointHandle<T>): void {
    (h as Handle<T>).state.inflight++;
  }

  end(h: EndpointHandle<T>, outcome: Outcome, latencyMs: number): void {
    const handle = h as Handle<T>;
    const s = handle.state;
    if (s.inflight > 0) s.inflight--;
    // Latency is only tracked where it is used: the clock read and exp() are most of end()'s cost.
    if (this.#algorithm === PEAK_EWMA) {
      const now = this.#now();
      if (outcome === "connect" || outcome === "reset" || outcome === "timeout") {
        // No response: the latency says little (a refused connection fails fast) and must not make
        // a broken endpoint look like the quickest one. Count at least double the current estimate.
        observe(s, Math.max(latencyMs, 2 * s.ewma, DEFAULT_RTT_MS), now);
      } else {
        observe(s, latencyMs, now);
      }
    }
    if (outcome === "local") return;
    const set = this.#newest();
    const target = handle.owner === set ? handle : set.#byKey.get(handle.key);
    // Backoff and outlier detection only for an endpoint the newest set still has, with the same history.
    if (target === undefined || target.state !== s) return;
    if (outcome === "connect") set.#connectFailed(target);
    else if (s.connectFailures > 0) set.#reachable(target);
    set.#record(target, outcome);
  }

  /** A connection to `h` failed: avoid it for a backoff that doubles with each failure in a row. */
  #connectFailed(h: Handle<T>): void {
    const s = h.state;
    const now = this.#now();
    // Attempts that were already under way when it was marked fail too: they do not lengthen it.
    if (s.unreachable && now < s.unreachableUntil) return;
    s.connectFailures++;
    s.unreachableUntil = now + connectBackoffMs(s.connectFailures);
    if (!s.unreachable) {
      s.unreachable = true;
      this.#unreachable++;
    }
    if (s.unreachableUntil < this.#nextReachableAt) this.#nextReachableAt = s.unreachableUntil;
  }

  /** A connection to `h` worked (it answered): out of connect backoff. */
  #reachable(h: Handle<T>): void {
    const s = h.state;
    s.connectFailures = 0;
    if (s.unreachable) {
      s.unreachable = false;
      this.#unreachable--;
    }
  }

  /** Ends the connect backoffs that are over by `now`: the next pick may probe those endpoints. */
  #endBackoffs(now: number): void {
    let next = Infinity;
    let count = 0;
    for (const h of this.#handles) {
      const s = h.state;
      if (!s.unreachable) continue;
      if (s.unreachableUntil > now) {
        count++;
        if (s.unreachableUntil < next) next = s.unreachableUntil;
      } else {
        s.unreachable = false; // connectFailures stays: failing again doubles the backoff
      }
    }
    this.#unreachable = count;
    this.#nextReachableAt = next;
  }

  /** The set that replaced this one, and so on: the one whose bookkeeping counts. */
  #newest(): EndpointSet<T> {
    let set = this.#successor;
    if (set === undefined) return this;
    while (set.#successor !== undefined) set = set.#successor;
    return set;
  }

  /** A pick honouring locality, ejections and exclusions; undefined when nothing qualifies. */
  #pickAvailable(hashKey: string | undefined, now: number): Handle<T> | undefined {
    const local = this.#local;
    if (local !== undefined) {
      const total = local.handles.length;
      const available = total - this.#ejectedLocal;
      if (available > 0 && available * 100 >= this.#minHealthyPercent * total) {
        const h = this.#pickIn(local, hashKey, now);
        if (h !== undefined) return h;
      }
    }
    return this.#pickIn(this.#all, hashKey, now);
  }

  #ok(h: Handle<T>): boolean {
    return (
      h !== this.#ex1 && h !== this.#ex2 && !(this.#honorEjection && (h.state.ejected || h.state.unreachable))
    );
  }

  #pickIn(g: Group<T>, hashKey: string | undefined, now: number): Handle<T> | undefined {
    const hs = g.handles;
    switch (this.#algorithm) {
      case ROUND_ROBIN: {
        const i = this.#roundRobin(g);
        return i < 0 ? undefined : hs[i];
      }
      case RANDOM: {
        const i = this.#randomIndex(g, -1);
        return i < 0 ? undefined : hs[i];
      }
      case LEAST_REQUEST:
      case PEAK_EWMA: {
        // Power of two choices: A is the next in round-robin order, B a random other one; B only
        // when strictly better, so that equal candidates (an idle cluster) go round robin.
        const a = this.#roundRobin(g);
        if (a < 0) return undefined;
        const b = this.#randomIndex(g, a);
        if (b < 0) return hs[a];
        const sa = hs[a].state;
        const sb = hs[b].state;
        if (this.#algorithm === LEAST_REQUEST) return sb.inflight < sa.inflight ? hs[b] : hs[a];
        return cost(sb, now) < cost(sa, now) ? hs[b] : hs[a];
      }
      default: {
        const table = g.table!;
        if (hashKey === undefined) {
          const i = this.#randomIndex(g, -1);
          return i < 0 ? undefined : hs[i];
        }
        let slot = table.slotOf(hash32(hashKey));
        const first = hs[table.ownerAt(slot)];
        if (this.#ok(first)) return first;
        if (!this.#anyOk(g)) return undefined;
        // Walk on from the owner: the next slots' owners, in an order fixed by the hash.
        const slots = table.slots;
        for (let k = 1; k < slots; k++) {
          slot = slot + 1 === slots ? 0 : slot + 1;
          const h = hs[table.ownerAt(slot)];
          if (this.#ok(h)) return h;
        }
        return undefined;
      }
    }
  }

  /** Index of the next acceptable endpoint in round-robin order, advancing the cursor; -1 if none. */
  #roundRobin(g: Group<T>): number {
    const n = g.handles.length;
    let i = g.cursor;
    if (this.#ex1 === undefined && this.#ex2 === undefined && !this.#honorEjection) {
      g.cursor = i + 1 === n ? 0 : i + 1;
      return i;
    }
    for (let k = 0; k < n; k++) {
      const j = i;
      i = i + 1 === n ? 0 : i + 1;
      if (this.#ok(g.handles[j])) {
        g.cursor = i;
        return j;
      }
    }
    return -1;
  }

  /** A uniformly random acceptable endpoint other than index `skip` (-1: none skipped); -1 if none. */
  #randomIndex(g: Group<T>, skip: number): number {
    const hs = g.handles;
    const n = hs.length;
    const choices = skip < 0 ? n : n - 1;
    if (choices <= 0) return -1;
    let j = Math.min(choices - 1, Math.floor(this.#random() * choices));
    if (skip >= 0 && j >= skip) j++;
    if (this.#ok(hs[j])) return j;
    // Some are unavailable: draw again among those that are, so that the one after an ejected
    // endpoint does not inherit its share.
    let count = 0;
    for (let i = 0; i < n; i++) if (i !== skip && this.#ok(hs[i])) count++;
    if (count === 0) return -1;
    let r = Math.min(count - 1, Math.floor(this.#random() * count));
    for (let i = 0; i < n; i++) {
      if (i !== skip && this.#ok(hs[i]) && r-- === 0) return i;
    }
    return -1;
  }

  #anyOk(g: Group<T>): boolean {
    for (const h of g.handles) if (this.#ok(h)) return true;
    return false;
  }

  /** Slow-start weight: 0.1 rising linearly to 1 over slowStartMs; 1 when not ramping. */
  #rampFactor(s: EndpointState, now: number): number {
    if (s.rampFrom !== s.rampFrom) return 1;
    const elapsed = now - s.rampFrom;
    if (elapsed >= this.#slowStartMs) {
      s.rampFrom = NaN;
      return 1;
    }
    const f =
      SLOW_START_MIN_WEIGHT + ((1 - SLOW_START_MIN_WEIGHT) * Math.max(0, elapsed)) / this.#slowStartMs;
    return f;
  }

  /** Outlier detection: count the outcome, eject at a threshold. */
  #record(h: Handle<T>, outcome: Outcome): void {
    const od = this.#outlier;
    if (od === undefined) return;
    const reason = countOutcome(h.state, outcome, od);
    if (reason !== undefined) this.#eject(h, reason, od);
  }

  #eject(h: Handle<T>, reason: EjectionReason, od: OutlierPolicy): void {
    // Over the cap: leave the counters as they are, so the next failure tries again (there may be
    // room by then).
    if (this.#ejected + 1 > maxEjected(this.#handles.length, od)) return;
    const s = h.state;
    beginEjection(s, od, this.#now());
    this.#ejected++;
    if (h.local) this.#ejectedLocal++;
    if (s.ejectedUntil < this.#nextReturnAt) this.#nextReturnAt = s.ejectedUntil;
    this.#events?.onEject?.(h.key, reason);
  }

  /** Returns every endpoint whose ejection has ended by `now` to rotation (in slow start, if configured). */
  #endEjections(now: number): void {
    let next = Infinity;
    for (const h of this.#handles) {
      const s = h.state;
      if (!s.ejected) continue;
      if (s.ejectedUntil > now) {
        if (s.ejectedUntil < next) next = s.ejectedUntil;
        continue;
      }
      s.ejected = false;
      s.returnedAt = s.ejectedUntil;
      this.#ejected--;
      if (h.local) this.#ejectedLocal--;
      if (this.#slowStartMs > 0) {
        s.rampFrom = s.ejectedUntil;
        this.#rampUntil = Math.max(this.#rampUntil, s.rampFrom + this.#slowStartMs);
      }
      this.#events?.onReturn?.(h.key);
    }
    this.#nextReturnAt = next;
  }
}
