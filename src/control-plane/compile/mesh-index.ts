// The compiler's indexed view of the mesh: every resource, indexed the ways a compile looks things up
// (workloads by namespace and label, Services with their own selectors, routes by parent Service,
// TrafficPolicies by target, FaultInjections by name, ReferenceGrants by namespace). It is kept
// current one change at a time: `apply(change)` updates only the index entries of the changed
// resource and says which destinations the change can affect (`Touched`), so the compile cache
// (prepared-state.ts) rebuilds only those. Nothing here is O(mesh) per change, except a Service
// appearing or disappearing, which scans the routes (not the workloads) for references to it.
// Every map drops an entry once it is empty, so a mesh that shrinks leaves nothing behind (`sizes`).
//
// What a change touches, by kind (old and new object both count, so a move is seen at both ends):
//   Service        → its own cluster and routes (selector, ports); appearing/disappearing also the
//                    routes of every route that names it as a backend (they become (in)valid)
//   Workload       → the clusters whose selector matches its old or new labels; the implicit Service
//                    it names, when it is the first or the last of that Service
//   HTTPRoute, GRPCRoute → the routes of its parents
//   TrafficPolicy  → its target's cluster (and the target's proxies' inbound side)
//   FaultInjection → the routes of the parents of every route whose rules refer to it
//   ReferenceGrant → the routes of the parents of every route with a backend or mirror in the grant's
//                    namespace from another namespace (routes are indexed by the namespaces they
//                    reach across: a grant can only change whether those resolve)
//   Mesh           → no compiled piece, but every proxy's own part (trust domain, mTLS mode)

import {
  SERVICE_LABEL,
  type AnyResource,
  type FaultInjection,
  type GRPCRoute,
  type HTTPRoute,
  type Mesh,
  type ReferenceGrant,
  type Service,
  type TrafficPolicy,
  type Workload,
} from "../../model/resources.ts";
import type { GrantIndex } from "./backend-refs.ts";
import { parentAttaches, type ServiceRoutes } from "./route-scope.ts";

/** One resource created (no `old`), updated, or deleted (no `new`). */
export interface Change {
  old?: AnyResource;
  new?: AnyResource;
}

/** What a batch of changes can affect, by Service key ("name.namespace"). */
export interface Touched {
  /** Services whose cluster (endpoints, policy) may have changed. */
  clusters: Set<string>;
  /** Services whose compiled routes may have changed (for every caller scope). */
  routes: Set<string>;
  /** Services that appeared or disappeared (declared or implicit). */
  membership: Set<string>;
  /** Every route may have changed (no kind sets it today; kept for callers that merge batches). */
  allRoutes: boolean;
  /** Every proxy's own part may have changed (the Mesh). */
  allProxies: boolean;
}

export function emptyTouched(): Touched {
  return {
    clusters: new Set(),
    routes: new Set(),
    membership: new Set(),
    allRoutes: false,
    allProxies: false,
  };
}

/** Adds `more` into `into` (batches coalesced over a debounce). */
export function mergeTouched(into: Touched, more: Touched): void {
  for (const k of more.clusters) into.clusters.add(k);
  for (const k of more.routes) into.routes.add(k);
  for (const k of more.membership) into.membership.add(k);
  into.allRoutes ||= more.allRoutes;
  into.allProxies ||= more.allProxies;
}

type AnyRoute = HTTPRoute | GRPCRoute;

export class MeshIndex {
  readonly #meshes = new Map<string, Mesh>();
  readonly #declared = new Map<string, Service>();
  /** Declared and implicit Services by key: what backendRefs resolve against. */
  readonly services = new Map<string, Service>();
  readonly #implicit = new WeakSet<Service>();
  #keys?: string[];
  /** Workloads by namespace, then by "label\0value" (SERVICE_LABEL included). */
  readonly #byLabel = new Map<string, Map<string, Set<Workload>>>();
  /** Services with a selector of their own, by namespace. */
  readonly #selecting = new Map<string, Set<string>>();
  /** Routes by resource id ("Kind/ns/name"), and the ids of the routes naming each parent key. */
  readonly #routes = new Map<string, AnyRoute>();
  readonly #byParent = new Map<string, Set<string>>();
  /** Ids of the routes with a backend or mirror in each namespace other than their own. */
  readonly #byRefNamespace = new Map<string, Set<string>>();
  readonly #scopes = new Map<string, { http: ServiceRoutes<HTTPRoute>; grpc: ServiceRoutes<GRPCRoute> }>();
  readonly #policies = new Map<string, Map<string, TrafficPolicy>>();
  /** FaultInjections by "namespace/name" (traffic.ts's FaultIndex). */
  readonly faults = new Map<string, FaultInjection>();
  readonly #grants = new Map<string, Map<string, ReferenceGrant>>();
  /** ReferenceGrants by namespace (backend-refs.ts's GrantIndex). */
  readonly grants: GrantIndex = new Map<string, ReferenceGrant[]>();

  static of(resources: Iterable<AnyResource>): MeshIndex {
    const index = new MeshIndex();
    for (const r of resources) index.apply({ new: r }, emptyTouched());
    return index;
  }

  get mesh(): Mesh | undefined {
    return this.#meshes.values().next().value;
  }

  /** Every Service key, sorted. */
  get keys(): string[] {
    return (this.#keys ??= [...this.services.keys()].sort((a, b) => (a < b ? -1 : 1)));
  }

  /** Updates the index for one change and adds what it can affect to `touched`. */
  apply(change: Change, touched: Touched): void {
    const r = (change.new ?? change.old) as AnyResource;
    switch (r.kind) {
      case "Mesh":
        if (change.old) this.#meshes.delete(change.old.metadata.name);
        if (change.new) this.#meshes.set(r.metadata.name, change.new as Mesh);
        touched.allProxies = true;
        return;
      case "Service":
        return this.#service(change.old as Service, change.new as Service, touched);
      case "Workload":
        return this.#workload(change.old as Workload, change.new as Workload, touched);
      case "HTTPRoute":
      case "GRPCRoute":
        return this.#route(change.old as AnyRoute, change.new as AnyRoute, touched);
      case "TrafficPolicy":
        for (const p of [change.old, change.new] as (TrafficPolicy | undefined)[]) {
          if (p === undefined) continue;
          const key = targetKey(p);
          const list = this.#policies.get(key);
          if (p === change.old) list?.delete(p.metadata.name);
          else mapIn(this.#policies, key).set(p.metadata.name, p);
          if (list?.size === 0) this.#policies.delete(key);
          touched.clusters.add(key);
        }
        return;
      case "FaultInjection":
        if (change.old) this.faults.delete(`${r.metadata.namespace}/${r.metadata.name}`);
        if (change.new)
          this.faults.set(`${r.metadata.namespace}/${r.metadata.name}`, change.new as FaultInjection);
        for (const route of this.#routes.values())
          if (route.metadata.namespace === r.metadata.namespace && refersToFault(route, r.metadata.name))
            this.#touchParents(route, touched);
        return;
      case "ReferenceGrant": {
        const ns = r.metadata.namespace;
        if (change.old) this.#grants.get(ns)?.delete(r.metadata.name);
        if (change.new) mapIn(this.#grants, ns).set(r.metadata.name, change.new as ReferenceGrant);
        const left = [...(this.#grants.get(ns)?.values() ?? [])];
        if (left.length > 0) (this.grants as Map<string, ReferenceGrant[]>).set(ns, left);
        else {
          this.#grants.delete(ns);
          (this.grants as Map<string, ReferenceGrant[]>).delete(ns);
        }
        // Only routes reaching into `ns` from elsewhere can resolve differently.
        for (const id of this.#byRefNamespace.get(ns) ?? [])
          this.#touchParents(this.#routes.get(id) as AnyRoute, touched);
        return;
      }
    }
  }

  /** Entries per internal map (diagnostics and the shrink test: all zero once the mesh is empty). */
  sizes(): Record<string, number> {
    let labelSets = 0;
    for (const m of this.#byLabel.values()) labelSets += m.size;
    return {
      meshes: this.#meshes.size,
      declared: this.#declared.size,
      services: this.services.size,
      labelNamespaces: this.#byLabel.size,
      labelSets,
      selecting: this.#selecting.size,
      routes: this.#routes.size,
      byParent: this.#byParent.size,
      byRefNamespace: this.#byRefNamespace.size,
      scopes: this.#scopes.size,
      policies: this.#policies.size,
      faults: this.faults.size,
      grants: this.#grants.size + this.grants.size,
    };
  }

  /** The TrafficPolicy governing a Service: the oldest of those targeting it (traffic.ts policyIndex). */
  policy(key: string): TrafficPolicy | undefined {
    let best: TrafficPolicy | undefined;
    for (const p of this.#policies.get(key)?.values() ?? []) {
      const order =
        best &&
        ((p.metadata.creationTimestamp ?? "").localeCompare(best.metadata.creationTimestamp ?? "") ||
          p.metadata.name.localeCompare(best.metadata.name));
      if (order === undefined || order < 0) best = p;
    }
    return best;
  }

  /**
   * The workloads of `namespace` whose labels (plus SERVICE_LABEL) match every entry of `selector`:
   * the smallest label set of the selector's entries, filtered by the others.
   */
  selected(namespace: string, selector: Record<string, string>): Workload[] {
    const labels = this.#byLabel.get(namespace);
    const entries = Object.entries(selector);
    if (labels === undefined || entries.length === 0) return [];
    let smallest: Set<Workload> | undefined;
    for (const [k, v] of entries) {
      const set = labels.get(`${k}\0${v}`);
      if (set === undefined) return [];
      if (smallest === undefined || set.size < smallest.size) smallest = set;
    }
    return [...(smallest as Set<Workload>)].filter((w) => matches(selector, w));
  }

  /** A Service's HTTPRoutes and GRPCRoutes, by caller scope (route-scope.ts); cached until touched. */
  scopes(key: string): { http: ServiceRoutes<HTTPRoute>; grpc: ServiceRoutes<GRPCRoute> } {
    let out = this.#scopes.get(key);
    if (out !== undefined) return out;
    out = { http: { producer: [], consumers: new Map() }, grpc: { producer: [], consumers: new Map() } };
    const svc = this.services.get(key);
    const svcNs = key.slice(key.indexOf(".") + 1);
    for (const id of svc === undefined ? [] : (this.#byParent.get(key) ?? [])) {
      const r = this.#routes.get(id) as AnyRoute;
      const ns = r.metadata.namespace;
      if (
        !r.spec.parentRefs.some(
          (p) => `${p.name}.${p.namespace ?? ns}` === key && parentAttaches(p, ns, svc!),
        )
      )
        continue;
      const group = (r.kind === "GRPCRoute" ? out.grpc : out.http) as ServiceRoutes<AnyRoute>;
      if (ns === svcNs) group.producer.push(r);
      else mapOfLists(group.consumers, ns).push(r);
    }
    this.#scopes.set(key, out);
    return out;
  }

  #service(old: Service | undefined, next: Service | undefined, touched: Touched): void {
    const s = (next ?? old) as Service;
    const ns = s.metadata.namespace;
    const key = `${s.metadata.name}.${ns}`;
    if (next) this.#declared.set(key, next);
    else this.#declared.delete(key);
    if (next?.spec.selector) mapIn(this.#selecting, ns, Set).add(key);
    else deleteIn(this.#selecting, ns, key);
    touched.clusters.add(key);
    touched.routes.add(key);
    this.#scopes.delete(key);
    this.#resolveService(key, touched);
  }

  #workload(old: Workload | undefined, next: Workload | undefined, touched: Touched): void {
    for (const w of [old, next]) {
      if (w === undefined) continue;
      const ns = w.metadata.namespace;
      const labels = mapIn(this.#byLabel, ns);
      for (const [k, v] of Object.entries(labelsOf(w))) {
        const id = `${k}\0${v}`;
        if (w === old) deleteIn(labels, id, w);
        else mapIn(labels, id, Set).add(w);
      }
      if (labels.size === 0) this.#byLabel.delete(ns);
      // The clusters it was or is in: its own service's, and those of Services selecting on their own.
      for (const key of [`${w.spec.service}.${ns}`, ...(this.#selecting.get(ns) ?? [])]) {
        const svc = this.services.get(key);
        if (svc && matches(selectorOf(svc), w)) touched.clusters.add(key);
      }
    }
    for (const w of new Set([old?.spec.service, next?.spec.service])) {
      const ns = (next ?? old)!.metadata.namespace;
      if (w !== undefined) this.#resolveService(`${w}.${ns}`, touched);
    }
  }

  #route(old: AnyRoute | undefined, next: AnyRoute | undefined, touched: Touched): void {
    const r = (next ?? old) as AnyRoute;
    const id = `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
    if (old) {
      for (const key of parentKeys(old)) deleteIn(this.#byParent, key, id);
      for (const ns of otherNamespaces(old)) deleteIn(this.#byRefNamespace, ns, id);
      this.#touchParents(old, touched);
      this.#routes.delete(id);
    }
    if (next) {
      this.#routes.set(id, next);
      for (const key of parentKeys(next)) mapIn(this.#byParent, key, Set).add(id);
      for (const ns of otherNamespaces(next)) mapIn(this.#byRefNamespace, ns, Set).add(id);
      this.#touchParents(next, touched);
    }
  }

  #touchParents(r: AnyRoute, touched: Touched): void {
    for (const key of parentKeys(r)) {
      touched.routes.add(key);
      this.#scopes.delete(key);
    }
  }

  /** The implicit Service `key`: the one already made, so its pieces' identity stays stable. */
  #implicitService(key: string): Service {
    const current = this.services.get(key);
    if (current !== undefined && this.#implicit.has(current)) return current;
    const dot = key.indexOf(".");
    const made = implicitService(key.slice(0, dot), key.slice(dot + 1));
    this.#implicit.add(made);
    return made;
  }

  /**
   * `key` is a Service if declared, or if a workload names it (implicit). When that flips, unscoped
   * proxies' outbound lists change, and every route naming it as a backend becomes (in)valid.
   */
  #resolveService(key: string, touched: Touched): void {
    const dot = key.indexOf(".");
    const declared = this.#declared.get(key);
    const implicit = declared
      ? undefined
      : this.#byLabel.get(key.slice(dot + 1))?.has(`${SERVICE_LABEL}\0${key.slice(0, dot)}`)
        ? this.#implicitService(key)
        : undefined;
    const before = this.services.has(key);
    const now = declared ?? implicit;
    if (now) this.services.set(key, now);
    else this.services.delete(key);
    if (before === (now !== undefined)) return;
    this.#keys = undefined;
    this.#scopes.delete(key);
    touched.membership.add(key);
    touched.clusters.add(key);
    touched.routes.add(key);
    for (const route of this.#routes.values())
      if (refersToService(route, key)) this.#touchParents(route, touched);
  }
}

export function selectorOf(svc: Service): Record<string, string> {
  return svc.spec.selector ?? { [SERVICE_LABEL]: svc.metadata.name };
}

/** A workload's labels as selectors see them: its own, plus SERVICE_LABEL. */
export function labelsOf(w: Workload): Record<string, string> {
  return { ...w.metadata.labels, [SERVICE_LABEL]: w.spec.service };
}

function matches(selector: Record<string, string>, w: Workload): boolean {
  const labels = labelsOf(w);
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

function implicitService(name: string, namespace: string): Service {
  return { apiVersion: "weft.dev/v1alpha1", kind: "Service", metadata: { name, namespace }, spec: {} };
}

function targetKey(p: TrafficPolicy): string {
  return `${p.spec.targetRef.name}.${p.metadata.namespace}`;
}

function parentKeys(r: AnyRoute): Set<string> {
  return new Set(r.spec.parentRefs.map((p) => `${p.name}.${p.namespace ?? r.metadata.namespace}`));
}

interface LooseRule {
  backendRefs?: { name: string; namespace?: string }[];
  filters?: {
    requestMirror?: { backendRef: { name: string; namespace?: string } };
    extensionRef?: { name: string };
  }[];
}

/** The backends and mirror targets a route's rules name. */
function* refsOf(r: AnyRoute): Generator<{ name: string; namespace?: string }> {
  for (const rule of (r.spec.rules ?? []) as LooseRule[]) {
    yield* rule.backendRefs ?? [];
    for (const f of rule.filters ?? []) if (f.requestMirror) yield f.requestMirror.backendRef;
  }
}

function refersToService(r: AnyRoute, key: string): boolean {
  const ns = r.metadata.namespace;
  for (const b of refsOf(r)) if (`${b.name}.${b.namespace ?? ns}` === key) return true;
  return false;
}

/** The namespaces other than its own that a route's backends or mirrors are in. */
function otherNamespaces(r: AnyRoute): Set<string> {
  const out = new Set<string>();
  for (const b of refsOf(r))
    if (b.namespace !== undefined && b.namespace !== r.metadata.namespace) out.add(b.namespace);
  return out;
}

function refersToFault(r: AnyRoute, name: string): boolean {
  return ((r.spec.rules ?? []) as LooseRule[]).some((rule) =>
    (rule.filters ?? []).some((f) => f.extensionRef?.name === name),
  );
}

function mapIn<K, V>(m: Map<K, V>, key: K, make: new () => V = Map as unknown as new () => V): V {
  let v = m.get(key);
  if (v === undefined) m.set(key, (v = new make()));
  return v;
}

/** Removes `value` from the set at `key`, and the set once it is empty. */
function deleteIn<K, V>(m: Map<K, Set<V>>, key: K, value: V): void {
  const set = m.get(key);
  set?.delete(value);
  if (set?.size === 0) m.delete(key);
}

function mapOfLists<K, V>(m: Map<K, V[]>, key: K): V[] {
  let v = m.get(key);
  if (v === undefined) m.set(key, (v = []));
  return v;
}
