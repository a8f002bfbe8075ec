// What every proxy's compile shares, kept across revisions: the indexed mesh (mesh-index.ts) and each
// destination's compiled pieces (destinations.ts, piece.ts) — a Service's cluster, its routes for each
// caller scope (producer routes, or one namespace's consumer routes), and its outbound entries. A
// change goes in through `apply`, which updates the index and drops only the pieces the change
// touches; they are rebuilt when a proxy next needs them, once, and shared by every proxy using them.
// `recomputed` counts the rebuilds (tests read them). A proxy's compile asks for its view: the pieces
// it reaches in snapshot order, with their hash and encoding; every unscoped proxy of a namespace
// shares one, made once per revision.

import type { Cluster, OutboundService, Route } from "../../model/snapshot.ts";
import type { RefContext } from "./backend-refs.ts";
import { compileCluster, compileRoutes, outboundService } from "./destinations.ts";
import { emptyTouched, type Change, type MeshIndex, type Touched } from "./mesh-index.ts";
import { encodeObject, hashOf, piece, type Piece } from "./piece.ts";
import { inScope } from "./route-scope.ts";

/** What a proxy reaches, as pieces in snapshot order: outbound entries, then the clusters they use. */
export interface View {
  outbound: [string, Piece<OutboundService>][];
  clusters: [string, Piece<Cluster>][];
  /** Hash of every piece's name and hash, in order: equal views, equal hashes. */
  hash: string;
  /** The snapshot's `outbound` and `clusters` (shared by the snapshots of one view: never mutated). */
  outboundValues: Record<string, OutboundService>;
  clusterValues: Record<string, Cluster>;
  /**
   * `"outbound":{…},"clusters":{…}` in JSON (UTF-8), built on first use and kept with the view: one
   * Buffer written by reference to the stream of every proxy of the view.
   */
  encoding(): Buffer;
}

/** Pieces rebuilt since this state was made (each counts once, however many proxies share it). */
export interface Recomputed {
  clusters: number;
  /** Route tables: one per Service and caller scope. */
  routes: number;
}

export class PreparedState {
  readonly index: MeshIndex;
  readonly recomputed: Recomputed = { clusters: 0, routes: 0 };
  readonly #clusters = new Map<string, Piece<Cluster>>();
  /** Per Service key: route tables by scope ("" producer, else the caller namespace). */
  readonly #routes = new Map<string, Map<string, Route[]>>();
  /** Per Service key: outbound entries by "scope|local" (host names differ for the Service's own namespace). */
  readonly #outbound = new Map<string, Map<string, Piece<OutboundService>>>();
  /** Unscoped proxies' views, by caller namespace; dropped at every change. */
  readonly #views = new Map<string, View>();

  constructor(index: MeshIndex) {
    this.index = index;
  }

  /** What backendRefs resolve against (the compiler, and route status in the config API). */
  get refs(): RefContext {
    return { services: this.index.services, grants: this.index.grants };
  }

  /** Entries kept, its index's and its own pieces' (diagnostics, metrics, the shrink test). */
  sizes(): Record<string, number> {
    let routeTables = 0;
    for (const m of this.#routes.values()) routeTables += m.size;
    let outbound = 0;
    for (const m of this.#outbound.values()) outbound += m.size;
    return {
      ...this.index.sizes(),
      clusters: this.#clusters.size,
      routeTables,
      outbound,
      views: this.#views.size,
    };
  }

  /** Applies changes to the index, drops the pieces they touch, and says what they touched. */
  apply(changes: Iterable<Change>): Touched {
    const touched = emptyTouched();
    for (const c of changes) this.index.apply(c, touched);
    this.#views.clear();
    for (const key of touched.clusters) this.#clusters.delete(key);
    if (touched.allRoutes) {
      this.#routes.clear();
      this.#outbound.clear();
    }
    for (const key of touched.routes) {
      this.#routes.delete(key);
      this.#outbound.delete(key);
    }
    return touched;
  }

  /**
   * The pieces a proxy in `namespace` uses: every Service (`reach` undefined) or those of `reach`
   * ("name.namespace" keys) that exist, sorted, each with the clusters its routes send to.
   */
  view(namespace: string, reach: ReadonlySet<string> | undefined): View {
    if (reach !== undefined)
      return this.#view(namespace, [...reach].filter((k) => this.index.services.has(k)).sort(byKey));
    let v = this.#views.get(namespace);
    if (v === undefined) this.#views.set(namespace, (v = this.#view(namespace, this.index.keys)));
    return v;
  }

  #view(namespace: string, keys: readonly string[]): View {
    const outbound: [string, Piece<OutboundService>][] = [];
    const clusters: [string, Piece<Cluster>][] = [];
    const added = new Set<string>();
    const addCluster = (name: string) => {
      if (added.has(name)) return;
      added.add(name);
      clusters.push([name, this.cluster(name)]);
    };
    let digest = "";
    for (const key of keys) {
      // GAMMA: the caller's namespace's consumer routes for this Service, else its producer routes.
      const entry = this.outbound(key, namespace) as Piece<OutboundService>;
      for (const r of entry.value.routes) {
        // An invalid backend has no cluster: the proxy answers its share of requests itself.
        for (const b of r.backends) if (b.invalid === undefined) addCluster(b.cluster);
        // Mirrored copies go to their own cluster, which the proxy must have like any backend's.
        for (const m of r.mirrors ?? []) addCluster(m.cluster);
      }
      // TCP ports are proxied to the Service's own endpoints (HTTPRoutes do not apply to them).
      if (entry.value.ports?.some((p) => p.protocol === "tcp")) addCluster(key);
      outbound.push([key, entry]);
      digest += `o ${key} ${entry.hash}\n`;
    }
    for (const [k, p] of clusters) digest += `c ${k} ${p.hash}\n`;
    let encoded: Buffer | undefined;
    return {
      outbound,
      clusters,
      encoding: () =>
        (encoded ??= Buffer.from(
          `"outbound":${encodeObject(outbound)},"clusters":${encodeObject(clusters)}`,
        )),
      hash: hashOf(digest),
      outboundValues: Object.fromEntries(outbound.map(([k, p]) => [k, p.value])),
      clusterValues: Object.fromEntries(clusters.map(([k, p]) => [k, p.value])),
    };
  }

  cluster(key: string): Piece<Cluster> {
    let p = this.#clusters.get(key);
    if (p === undefined) {
      this.#clusters.set(key, (p = piece(compileCluster(this.index, key))));
      this.recomputed.clusters++;
    }
    return p;
  }

  /**
   * `key`'s outbound entry for callers in `callerNamespace`: that namespace's consumer routes for it
   * if it has any, else its producer routes (route-scope.ts). Undefined if `key` is no Service.
   */
  outbound(key: string, callerNamespace: string): Piece<OutboundService> | undefined {
    const svc = this.index.services.get(key);
    if (svc === undefined) return undefined;
    const scopes = this.index.scopes(key);
    const http = inScope(scopes.http, callerNamespace);
    const grpc = inScope(scopes.grpc, callerNamespace);
    // Producer results are shared by every namespace that has no consumer routes of its own.
    const scope = http.consumer || grpc.consumer ? callerNamespace : "";
    const local = svc.metadata.namespace === callerNamespace;
    const id = `${scope}|${local ? 1 : 0}`;
    let byScope = this.#outbound.get(key);
    let p = byScope?.get(id);
    if (p !== undefined) return p;
    let tables = this.#routes.get(key);
    if (tables === undefined) this.#routes.set(key, (tables = new Map()));
    let routes = tables.get(scope);
    if (routes === undefined) {
      tables.set(scope, (routes = compileRoutes(this.index, svc, http.routes, grpc.routes)));
      this.recomputed.routes++;
    }
    if (byScope === undefined) this.#outbound.set(key, (byScope = new Map()));
    byScope.set(id, (p = piece(outboundService(svc, routes, callerNamespace))));
    return p;
  }
}

function byKey(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
