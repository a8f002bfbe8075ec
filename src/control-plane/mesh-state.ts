// An in-memory view of every resource in the store, kept current by a watch. The compiler reads it;
// listeners hear about each new revision and what it touched. The compiler's indexed state and its
// compiled pieces (compile/prepared-state.ts) are kept across revisions: each watched change goes in
// as (old object, new object), and only what it touches is dropped and later rebuilt.

import {
  RESOURCE_PREFIX,
  type AnyResource,
  type FaultInjection,
  type GRPCRoute,
  type HTTPRoute,
  type Kind,
  type ReferenceGrant,
  type TrafficPolicy,
} from "../model/resources.ts";
import type { Store, Watcher } from "../store/store.ts";
import { prepareState, type MeshState, type PreparedState } from "./compile/compile.ts";
import type { Change, Touched } from "./compile/mesh-index.ts";

export class MeshStateCache {
  readonly #store: Store;
  readonly #byKey = new Map<string, AnyResource>();
  readonly #listeners = new Set<(revision: number, touched: Touched) => void>();
  #watcher?: Watcher;
  #revision = 0;
  #state?: MeshState;
  #prepared: PreparedState = prepareState(emptyState());

  constructor(store: Store) {
    this.#store = store;
  }

  async start(): Promise<void> {
    const { kvs, revision } = await this.#store.range(RESOURCE_PREFIX);
    for (const kv of kvs) this.#byKey.set(kv.key, decodeResource(kv.value, kv.modRevision));
    this.#revision = revision;
    this.#prepared = prepareState(this.state());
    this.#watcher = this.#store.watch(
      RESOURCE_PREFIX,
      (events, rev) => {
        const changes: Change[] = [];
        for (const e of events) {
          const old = this.#byKey.get(e.kv.key);
          if (e.type === "put") {
            const next = decodeResource(e.kv.value, e.kv.modRevision);
            this.#byKey.set(e.kv.key, next);
            changes.push({ old, new: next });
          } else if (old !== undefined) {
            this.#byKey.delete(e.kv.key);
            changes.push({ old });
          }
        }
        this.#revision = rev;
        this.#state = undefined;
        const touched = this.#prepared.apply(changes);
        for (const l of this.#listeners) l(rev, touched);
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
  onChange(fn: (revision: number, touched: Touched) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  list(kind: Kind, namespace?: string): AnyResource[] {
    const out: AnyResource[] = [];
    for (const r of this.#byKey.values()) {
      if (r.kind === kind && (namespace === undefined || r.metadata.namespace === namespace)) out.push(r);
    }
    return out.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
  }

  /** The compiler's input; rebuilt lazily once per revision. */
  state(): MeshState {
    if (this.#state) return this.#state;
    const all = [...this.#byKey.values()];
    this.#state = {
      mesh: all.find((r) => r.kind === "Mesh") as MeshState["mesh"],
      services: all.filter((r) => r.kind === "Service") as MeshState["services"],
      workloads: all.filter((r) => r.kind === "Workload") as MeshState["workloads"],
      routes: all.filter((r): r is HTTPRoute => r.kind === "HTTPRoute"),
      grpcRoutes: all.filter((r): r is GRPCRoute => r.kind === "GRPCRoute"),
      trafficPolicies: all.filter((r): r is TrafficPolicy => r.kind === "TrafficPolicy"),
      faultInjections: all.filter((r): r is FaultInjection => r.kind === "FaultInjection"),
      referenceGrants: all.filter((r): r is ReferenceGrant => r.kind === "ReferenceGrant"),
    };
    return this.#state;
  }

  /** What every proxy's compile of state() shares: kept current change by change. */
  prepared(): PreparedState {
    return this.#prepared;
  }

  stop(): void {
    this.#watcher?.cancel();
  }
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
