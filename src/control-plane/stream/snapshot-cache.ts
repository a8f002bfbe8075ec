// The per-proxy snapshot cache: for every registered proxy, the snapshot compiled from the current
// mesh state, with its content-derived version. It is the one place where stream sessions' snapshots
// are compiled.
//
// Readers pull, one version at a time (go-control-plane's watches): `watch(proxy, knownVersion, fn)`
// calls `fn` once, with the first snapshot whose version differs from `knownVersion` — at once if
// the cache has one, else when a mesh change produces one — and is then done; the reader watches
// again when it can take the next (the config stream: once the proxy has read the last one). So a
// proxy is compiled for when the mesh changes (bursts coalesced by `debounceMs`) only if a reader is
// waiting for it; for a reader that is behind, changes just mark the proxy stale, and one compile
// of the newest state happens when it asks again. A compile that yields the version a reader has
// answers nothing.
//
// A mesh change concerns only the proxies whose snapshot used what it touched (compile/mesh-index.ts):
// each entry remembers the Services its snapshot depends on (its outbound entries, its clusters, its
// own Service, what it asked to reach or subscribed to; an unscoped proxy also every Service appearing
// or going, an on-demand proxy a Service appearing or going that one of its subscriptions names). Other
// proxies are not compiled again: their snapshot, version and wire encoding stay as they are.
//
// Every compiled snapshot passes the model's consistency check before it is stored. One that fails
// is a compiler bug: logged loudly, counted, never stored or sent — the proxy keeps the last good one.

import type { ProxySnapshot } from "../../model/snapshot.ts";
import { describeViolations, snapshotViolations } from "../../model/snapshot-consistency.ts";
import { logSafe } from "../../model/log-safe.ts";
import { canonical, compileSnapshot, type ProxyRequest } from "../compile/compile.ts";
import { emptyTouched, mergeTouched, type Touched } from "../compile/mesh-index.ts";
import type { MeshStateCache } from "../mesh-state.ts";
import { parseSubscription } from "../../model/subscription-names.ts";
import { DeltaEncoder } from "./delta-encoder.ts";

/** What a protocol server reads: a proxy's snapshots, as they change. */
export interface SnapshotReader {
  /**
   * Calls `onSnapshot` once, with the proxy's first snapshot whose version is not `knownVersion`:
   * now (before returning) if there is one, else when there is. Returns the cancel.
   */
  watch(
    proxyKey: string,
    knownVersion: string | undefined,
    onSnapshot: (s: ProxySnapshot) => void,
  ): () => void;
}

/** A proxy's key in the cache: "namespace/workload". */
export function proxyKey(namespace: string, workload: string): string {
  return `${namespace}/${workload}`;
}

interface Watch {
  onSnapshot: (s: ProxySnapshot) => void;
  /** The version the reader has. */
  version: string | undefined;
}

interface Entry {
  /** What to compile for; undefined while only watched (the proxy is not registered yet). */
  node?: ProxyRequest;
  /** Registrations holding the node: the entry goes when none is left and nobody watches. */
  holders: number;
  snapshot?: ProxySnapshot;
  /** The mesh changed since `snapshot` was compiled. */
  stale: boolean;
  /** Readers waiting for a version they do not have. */
  watches: Set<Watch>;
  /** Mesh changes that found no reader waiting: coalesced into the next compile. */
  deferred: number;
  /**
   * Service keys `snapshot` depends on (its view's, shared, and its own); undefined = unknown. For an
   * on-demand proxy, `bare`: the bare names it subscribed to (a Service of that name appearing or
   * going anywhere may change what they mean).
   */
  deps?: { view: ReadonlySet<string>; own: readonly string[]; bare?: ReadonlySet<string> };
}

export interface SnapshotCacheOptions {
  state: MeshStateCache;
  /** Coalesces bursts of mesh changes into one compile per proxy (ms). */
  debounceMs: number;
  /** Where compiler bugs are reported (default stderr). */
  log?: (msg: string) => void;
  /** The compiler (default compileSnapshot); tests inject a broken one. */
  compile?: typeof compileSnapshot;
}

export class SnapshotCache implements SnapshotReader {
  readonly #opts: SnapshotCacheOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #unsubscribe: () => void;
  #timer?: NodeJS.Timeout;
  /** Snapshot sections (compiled pieces' values) that passed the consistency check. */
  readonly #checked = new WeakSet<object>();
  /**
   * A snapshot's `outbound` object → its `clusters` object, once that pair passed the check, with the
   * Service keys they hold: unscoped proxies of a namespace share one pair (compile/prepared-state.ts
   * views), so it is checked, and its keys collected, once.
   */
  readonly #views = new WeakMap<object, { clusters: object; keys: Set<string> }>();
  /** What the mesh changes since the last debounce touched. */
  #touched: Touched = emptyTouched();
  /** Encodes what streams send of these snapshots: deltas between them made once per pair of views. */
  readonly deltas = new DeltaEncoder();
  /** Snapshots compiled, and ones refused by the consistency check (compiler bugs), since start. */
  compiled = 0;
  inconsistent = 0;
  /** Mesh changes that found a proxy's reader busy, summed over proxies (the entries' `deferred`). */
  coalesced = 0;

  constructor(opts: SnapshotCacheOptions) {
    this.#opts = opts;
    this.#unsubscribe = opts.state.onChange((_rev, touched) => {
      mergeTouched(this.#touched, touched);
      this.#schedule();
    });
  }

  /**
   * A proxy registered with this node (its Workload, app port and reach): its snapshot is compiled
   * now and on every change. Returns the release; the entry stays while anyone holds or watches it.
   */
  setNode(key: string, node: ProxyRequest): () => void {
    const entry = this.#entry(key);
    entry.node = node;
    entry.deps = undefined;
    entry.holders++;
    entry.stale = true;
    if (entry.watches.size > 0) this.#refresh(key, entry);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.holders--;
      this.#dropIfUnused(key, entry);
    };
  }

  /**
   * An on-demand proxy's subscriptions changed: compiled again at once (no debounce: its app's
   * request waits for the answer) if a reader waits, else when it next asks.
   */
  setSubscriptions(key: string, names: readonly string[]): void {
    const entry = this.#entries.get(key);
    if (entry?.node === undefined) return;
    entry.node = { ...entry.node, subscriptions: [...names] };
    entry.deps = undefined;
    entry.stale = true;
    if (entry.watches.size > 0) this.#refresh(key, entry);
  }

  watch(key: string, knownVersion: string | undefined, onSnapshot: (s: ProxySnapshot) => void): () => void {
    const entry = this.#entry(key);
    if (entry.stale) this.#compile(key, entry);
    const w: Watch = { onSnapshot, version: knownVersion };
    if (entry.snapshot && entry.snapshot.version !== knownVersion) {
      onSnapshot(entry.snapshot);
      return () => {};
    }
    entry.watches.add(w);
    return () => {
      entry.watches.delete(w);
      this.#dropIfUnused(key, entry);
    };
  }

  /** Mesh changes that found nobody waiting for this proxy's snapshot (coalesced; diagnostics). */
  deferred(key: string): number {
    return this.#entries.get(key)?.deferred ?? 0;
  }

  /** The proxy's current snapshot, if any (diagnostics and tests). */
  get(key: string): ProxySnapshot | undefined {
    return this.#entries.get(key)?.snapshot;
  }

  /** Proxies with an entry. */
  get size(): number {
    return this.#entries.size;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#unsubscribe();
  }

  #entry(key: string): Entry {
    let e = this.#entries.get(key);
    if (e === undefined)
      this.#entries.set(key, (e = { holders: 0, stale: false, watches: new Set(), deferred: 0 }));
    return e;
  }

  #dropIfUnused(key: string, entry: Entry): void {
    if (entry.holders > 0 || entry.watches.size > 0 || this.#entries.get(key) !== entry) return;
    this.#entries.delete(key);
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const touched = this.#touched;
      this.#touched = emptyTouched();
      for (const [key, entry] of this.#entries) {
        if (!concerns(touched, entry)) continue;
        entry.stale = true;
        if (entry.watches.size > 0) this.#refresh(key, entry);
        else {
          entry.deferred++;
          this.coalesced++;
        }
      }
    }, this.#opts.debounceMs);
  }

  /** Compiles, and answers the waiting readers that do not have the result yet. */
  #refresh(key: string, entry: Entry): void {
    this.#compile(key, entry);
    const s = entry.snapshot;
    if (s === undefined) return;
    for (const w of [...entry.watches]) {
      if (w.version === s.version) continue;
      entry.watches.delete(w);
      w.onSnapshot(s);
    }
  }

  #compile(key: string, entry: Entry): void {
    if (!entry.node) return;
    entry.stale = false;
    const { state } = this.#opts;
    let snapshot: ProxySnapshot;
    try {
      snapshot = (this.#opts.compile ?? compileSnapshot)(state.state(), entry.node, state.prepared());
    } catch (err) {
      // The compiler is pure over validated resources: a throw is a bug, for this proxy only.
      this.#bug(`compiling the snapshot of ${key} failed: ${(err as Error).message}`);
      entry.deps = undefined;
      return;
    }
    this.compiled++;
    if (snapshot.version === entry.snapshot?.version) return;
    let view = this.#views.get(snapshot.outbound);
    if (view?.clusters !== snapshot.clusters) view = undefined;
    // A known pair: only the proxy's own parts are left to check.
    const check = snapshotViolations(
      view ? { ...snapshot, outbound: {}, clusters: {} } : snapshot,
      this.#checked,
    );
    if (check.violations.length > 0) {
      this.inconsistent++;
      this.#bug(`compiled an inconsistent snapshot for ${key}, not sent: ${describeViolations(check)}`);
      entry.deps = undefined;
      return;
    }
    // Its clusters and services are shared with other proxies' snapshots: not walked again for them.
    if (view === undefined) {
      for (const c of Object.values(snapshot.clusters)) this.#checked.add(c);
      for (const o of Object.values(snapshot.outbound)) this.#checked.add(o);
      const keys = new Set([...Object.keys(snapshot.outbound), ...Object.keys(snapshot.clusters)]);
      this.#views.set(snapshot.outbound, (view = { clusters: snapshot.clusters, keys }));
    }
    entry.snapshot = snapshot;
    entry.deps = { view: view.keys, ...ownDependencies(entry.node) };
  }

  #bug(msg: string): void {
    const log = this.#opts.log ?? ((m: string) => console.error(m));
    log(`weft control-plane: BUG: ${logSafe(msg, 2000)}`);
  }
}

/**
 * The Service keys a proxy's snapshot depends on besides its view's: its own, what it asked to reach
 * or subscribed to by a qualified name; and the bare names it subscribed to.
 */
function ownDependencies(node: ProxyRequest): { own: string[]; bare?: Set<string> } {
  const ns = node.workload.metadata.namespace;
  const own = [`${node.workload.spec.service}.${ns}`, ...(node.reach ?? []).map((r) => canonical(r, ns))];
  if (!node.onDemand) return { own };
  const bare = new Set<string>();
  for (const name of node.subscriptions ?? []) {
    const parsed = parseSubscription(name);
    if (parsed === undefined) continue;
    if ("key" in parsed) own.push(parsed.key);
    else bare.add(parsed.bare);
  }
  return { own, bare };
}

/** Whether mesh changes that touched `t` can change `entry`'s snapshot. */
function concerns(t: Touched, entry: Entry): boolean {
  const deps = entry.deps;
  if (deps === undefined || t.allProxies || t.allRoutes) return true;
  // An unscoped proxy reaches every Service: one appearing or going changes its outbound list.
  if (entry.node?.reach === undefined && !entry.node?.onDemand && t.membership.size > 0) return true;
  for (const set of [t.clusters, t.routes, t.membership])
    for (const k of set) if (deps.view.has(k) || deps.own.includes(k)) return true;
  // On demand: a Service of a subscribed bare name appearing or going may change what it means.
  if (deps.bare !== undefined && deps.bare.size > 0)
    for (const k of t.membership) if (deps.bare.has(k.slice(0, k.indexOf(".")))) return true;
  return false;
}
