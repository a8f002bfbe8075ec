// The compiler: a pure function from resources + registry to one proxy's config snapshot.
// Same input, same output (and the same version string), so a snapshot that did not change is never
// pushed again and a reconnecting proxy that already runs it gets nothing new.
//
// Cost: what does not depend on the proxy — the indexed mesh, each destination's cluster and routes,
// with their encodings and hashes — lives in a PreparedState (prepared-state.ts), shared by every
// proxy's compile and, in the control plane, kept across revisions and updated per change. A proxy's
// compile only picks its pieces (all unscoped proxies of a namespace share one view of them): its
// version is a hash of its own parts and its pieces' hashes, its wire encoding the concatenation of
// theirs (piece.ts). Without a PreparedState, compileSnapshot
// prepares its own: the output is the same either way.

import {
  DEFAULT_TRUST_DOMAIN,
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
import type { InboundConfig, InboundPort, ProxyIdentity, ProxySnapshot } from "../../model/snapshot.ts";
import { servicePort } from "./destinations.ts";
import { MeshIndex } from "./mesh-index.ts";
import { hashOf, setEncoding, setPieces } from "./piece.ts";
import { PreparedState } from "./prepared-state.ts";
import { resolveSubscriptions } from "./subscriptions.ts";
import { healthCheck, rateLimit } from "./traffic.ts";

export { hostsOf } from "./destinations.ts";
export { PreparedState } from "./prepared-state.ts";

export interface MeshState {
  mesh?: Mesh;
  services: Service[];
  workloads: Workload[];
  routes: HTTPRoute[];
  /** Absent = none (older callers). */
  grpcRoutes?: GRPCRoute[];
  trafficPolicies: TrafficPolicy[];
  faultInjections: FaultInjection[];
  referenceGrants: ReferenceGrant[];
}

export interface ProxyRequest {
  /** The proxy's own registered Workload. */
  workload: Workload;
  /** Where its app listens (the app port of the Service's first port, and of undeclared ports). */
  appPort: number;
  /**
   * App ports of the Service's other ports, keyed by service port number or port name ("9090",
   * "grpc"). A declared port without an entry is served on the same port number, as a Kubernetes
   * Service's targetPort defaults to its port.
   */
  appPorts?: Record<string, number>;
  /**
   * Services ("name" or "name.namespace") this proxy reaches; undefined = every service in the mesh —
   * unless `onDemand`, where it is what to pre-load (undefined = nothing).
   */
  reach?: string[];
  /** On-demand scoping: the proxy gets its pre-loads (`reach`) and its `subscriptions` only. */
  onDemand?: boolean;
  /** On-demand: host names the proxy subscribed to (subscriptions.ts resolves them). */
  subscriptions?: readonly string[];
}

/** A PreparedState for one MeshState, from scratch (the control plane keeps one current instead). */
export function prepareState(state: MeshState): PreparedState {
  const all: AnyResource[] = [
    ...(state.mesh ? [state.mesh] : []),
    ...state.services,
    ...state.workloads,
    ...state.routes,
    ...(state.grpcRoutes ?? []),
    ...state.trafficPolicies,
    ...state.faultInjections,
    ...state.referenceGrants,
  ];
  return new PreparedState(MeshIndex.of(all));
}

/** `prepared` must be of this very state: prepareState(state), or one kept current with it. */
export function compileSnapshot(
  state: MeshState,
  proxy: ProxyRequest,
  prepared: PreparedState = prepareState(state),
): ProxySnapshot {
  const self = proxy.workload;
  const namespace = self.metadata.namespace;
  const { index } = prepared;
  let reach = proxy.reach && new Set(proxy.reach.map((r) => canonical(r, namespace)));
  // On demand: the pre-loads plus what its subscriptions name; the rest of them are `unresolved`.
  let unresolved: string[] = [];
  if (proxy.onDemand) {
    const resolved = resolveSubscriptions(index, proxy.subscriptions ?? [], namespace);
    reach = new Set([...(reach ?? []), ...resolved.keys]);
    unresolved = resolved.unresolved;
  }

  // What it reaches, as shared pieces: the same for every unscoped proxy of a namespace.
  const view = prepared.view(namespace, reach);

  const identity: ProxyIdentity = {
    service: self.spec.service,
    namespace,
    identity: self.spec.identity ?? "",
    workload: self.metadata.name,
  };
  if (self.spec.zone) identity.zone = self.spec.zone;

  // The policy of the proxy's own service also guards its inbound side: every instance limits and
  // health-checks its own app.
  const ownKey = `${self.spec.service}.${namespace}`;
  const inbound: InboundConfig = {
    appAddress: "127.0.0.1",
    appPort: proxy.appPort,
    ports: inboundPorts(index.services.get(ownKey), proxy),
  };
  const own = index.policy(ownKey);
  const limit = own && rateLimit(own);
  if (limit) inbound.rateLimit = limit;
  const check = own && healthCheck(own);
  if (check) inbound.healthCheck = check;
  const mesh = {
    trustDomain: index.mesh?.spec.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    mtlsMode: index.mesh?.spec.mtls?.mode ?? "STRICT",
  };

  // The version: a hash of the proxy's own parts and of its view's hash (itself a hash of each
  // piece's name and content hash, in snapshot order) — content-derived like a hash of the whole
  // body, without encoding the body.
  const head = `"proxy":${JSON.stringify(identity)},"mesh":${JSON.stringify(mesh)},"inbound":${JSON.stringify(inbound)}`;
  // `unresolved` only when there is one (snapshots of other proxies keep their versions).
  const tail = unresolved.length === 0 ? "" : `,"unresolved":${JSON.stringify(unresolved)}`;
  const version = hashOf(`${head}\n${view.hash}${tail}`);
  const snapshot: ProxySnapshot = {
    version,
    proxy: identity,
    mesh,
    inbound,
    outbound: view.outboundValues,
    clusters: view.clusterValues,
  };
  if (unresolved.length > 0) snapshot.unresolved = unresolved;
  // On the wire: the same JSON as JSON.stringify(snapshot), made from the pieces' encodings.
  setEncoding(snapshot, () => [
    `{"version":${JSON.stringify(version)},${head},`,
    view.encoding(),
    `${tail}}`,
  ]);
  // Delta pushes diff the view's pieces by hash (stream/delta-encoder.ts).
  setPieces(snapshot, view);
  return snapshot;
}

/**
 * The proxy's own Service's ports → app ports: the first port is served on the proxy's appPort
 * (`--port`), another one on what `appPorts` names for it (by number, then by name), else on its own
 * number.
 */
function inboundPorts(svc: Service | undefined, proxy: ProxyRequest): InboundPort[] {
  return (svc?.spec.ports ?? []).map((p, i) => {
    const given =
      proxy.appPorts?.[String(p.port)] ?? (p.name === undefined ? undefined : proxy.appPorts?.[p.name]);
    const out: InboundPort = { ...servicePort(p), appPort: given ?? (i === 0 ? proxy.appPort : p.port) };
    return out;
  });
}

export function canonical(ref: string, defaultNamespace: string): string {
  const [name, ns] = ref.split(".");
  return `${name}.${ns || defaultNamespace}`;
}
