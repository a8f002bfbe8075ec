// An in-memory view of every resource in the store, kept current by a watch, by kind and name: a
// change updates one entry (never a copy of the whole mesh). The compiler reads it; listeners hear
// about each new revision, what it touched and the changes themselves. The compiler's indexed state and its
// compiled pieces (compile/prepared-state.ts) are kept across revisions: each watched change goes in
// as (old object, new object), and only what it touches is dropped and later rebuilt.

import { RESOURCE_PREFIX, type AnyResource, type Kind } from "../model/resources.ts";
import type { Store, Watcher } from "../store/store.ts";
import { prepareState, type MeshState, type PreparedState } from "./compile/compile.ts";
import type { Change, Touched } from "./compile/mesh-index.ts";

/** Hears each revision: what its changes touched (compile/mesh-index.ts), and the changes themselves. */
export type ChangeListener = (revision: number, touched: Touched, changes: readonly Change[]) => void;

/** MeshState's list of each kind. */
const LISTS = {
  services: "Service",
  workloads: "Workload",
  routes: "HTTPRoute",
  grpcRoutes: "GRPCRoute",
  trafficPolicies: "TrafficPolicy",
  faultInjections: "FaultInjection",
  referenceGrants: "ReferenceGrant",
} as const satisfies Partial<Record<keyof MeshState, Kind>>;

export class MeshStateCache {
  readonly #store: Store;
  /** Every resource by kind, then by "namespace/name": updated in place, one entry per change. */
  readonly #byKind = new Map<Kind, Map<string, AnyResource>>();
  /** Each kind's list as state() gives it, made on first read after that kind last changed. */
  readonly #lists = new Map<Kind, AnyResource[]>();
  readonly #listeners = new Set<ChangeListener>();
  #watcher?: Watcher;
  #revision = 0;
  #state?: MeshState;
  #prepared: PreparedState = prepareState(emptyState());
  /** Resources copied into state()'s lists since start (diagnostics: per-change cost is per kind read). */
  listed = 0;

  constructor(store: Store) {
    this.#store = store;
  }

  async start(): Promise<void> {
    const { kvs, revision } = await this.#store.range(RESOURCE_PREFIX);
    for (const kv of kvs) {
      const ref = refOf(kv.key);
      if (ref) this.#put(ref, decodeResource(kv.value, kv.modRevision));
    }
    this.#revision = revision;
    this.#prepared = prepareState(this.state());
    this.#watcher = this.#store.watch(
      RESOURCE_PREFIX,
      (events, rev) => {
        const changes: Change[] = [];
        for (const e of events) {
          const ref = refOf(e.kv.key);
          if (ref === undefined) continue;
          const old = this.get(ref.kind, ref.namespace, ref.name);
          if (e.type === "put") {
            const next = decodeResource(e.kv.value, e.kv.modRevision);
            this.#put(ref, next);
            changes.push({ old, new: next });
          } else if (old !== undefined) {
            this.#delete(ref);
            changes.push({ old });
          }
        }
        this.#revision = rev;
        this.#state = undefined;
        const touched = this.#prepared.apply(changes);
        for (const l of this.#listeners) l(rev, touched, changes);
      },
      {
        fromRevision: revision + 1,
        onError: (err) => {
          // A broken watch would silently freeze configuration: fail loudly instead.
          console.error(`weft control-plane: resource watch failed: ${err.message}`);
          process.exitCode = 1;
        },
      },
    );
  }

  get revision(): number {
    return this.#revision;
  }

  /** `fn` hears each revision, with what its changes touched (compile/mesh-index.ts). */
  onChange(fn: ChangeListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** One resource, or undefined. */
  get(kind: Kind, namespace: string, name: string): AnyResource | undefined {
    return this.#byKind.get(kind)?.get(`${namespace}/${name}`);
  }

  /** Resources of each kind (diagnostics and the shrink test). */
  counts(): Record<string, number> {
    return Object.fromEntries([...this.#byKind].map(([k, m]) => [k, m.size]));
  }

  list(kind: Kind, namespace?: string): AnyResource[] {
    const out: AnyResource[] = [];
    for (const r of this.#byKind.get(kind)?.values() ?? []) {
      if (namespace === undefined || r.metadata.namespace === namespace) out.push(r);
    }
    return out.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
  }

  /**
   * The compiler's input. Its lists are made when first read, once per change of their kind: the
   * control plane's own compiles and checks read the kept index (prepared()) instead, so a change
   * costs what it touches, not a copy of the mesh. Read it in the revision it was got in.
   */
  state(): MeshState {
    if (this.#state) return this.#state;
    const state = {} as MeshState;
    const meshes = this.#byKind.get("Mesh");
    Object.defineProperty(state, "mesh", {
      enumerable: true,
      get: () => meshes?.values().next().value,
    });
    for (const [field, kind] of Object.entries(LISTS))
      Object.defineProperty(state, field, { enumerable: true, get: () => this.#list(kind) });
    return (this.#state = state);
  }

  /** What every proxy's compile of state() shares: kept current change by change. */
  prepared(): PreparedState {
    return this.#prepared;
  }

  stop(): void {
    this.#watcher?.cancel();
  }

  #list(kind: Kind): AnyResource[] {
    let list = this.#lists.get(kind);
    if (list === undefined) {
      list = [...(this.#byKind.get(kind)?.values() ?? [])];
      this.listed += list.length;
      this.#lists.set(kind, list);
    }
    return list;
  }

  #put(ref: Ref, r: AnyResource): void {
    let m = this.#byKind.get(ref.kind);
    if (m === undefined) this.#byKind.set(ref.kind, (m = new Map()));
    m.set(`${ref.namespace}/${ref.name}`, r);
    this.#lists.delete(ref.kind);
  }

  #delete(ref: Ref): void {
    const m = this.#byKind.get(ref.kind);
    m?.delete(`${ref.namespace}/${ref.name}`);
    if (m?.size === 0) this.#byKind.delete(ref.kind);
    this.#lists.delete(ref.kind);
  }
}

interface Ref {
  kind: Kind;
  namespace: string;
  name: string;
}

/** Kind, namespace and name from a resource's store key (/weft/resources/<Kind>/<ns>/<name>). */
function refOf(key: string): Ref | undefined {
  const [kind, namespace, name] = key.slice(RESOURCE_PREFIX.length).split("/");
  return name === undefined ? undefined : { kind: kind as Kind, namespace, name };
}

export function decodeResource(value: string, modRevision: number): AnyResource {
  const r = JSON.parse(value) as AnyResource;
  r.metadata.resourceVersion = String(modRevision);
  return r;
}

function emptyState(): MeshState {
  return {
    services: [],
    workloads: [],
    routes: [],
    grpcRoutes: [],
    trafficPolicies: [],
    faultInjections: [],
    referenceGrants: [],
  };
}

function keyOf(r: AnyResource): string {
  return `${r.metadata.namespace}/${r.metadata.name}`;
}
