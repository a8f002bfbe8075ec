// The compiled, per-proxy configuration: a plain serialisable value. The control plane's compiler
// produces it (src/control-plane/compile/), the config stream carries it, the proxy runs it.

import type { MtlsMode, PathMatchType, Protocol } from "./resources.ts";

export interface ProxySnapshot {
  /** Changes whenever the content changes; equal versions mean equal content. */
  version: string;
  proxy: ProxyIdentity;
  mesh: { trustDomain: string; mtlsMode: MtlsMode };
  inbound: InboundConfig;
  /** Services this proxy can reach, by canonical name "name.namespace". */
  outbound: Record<string, OutboundService>;
  /** Backends (balanced endpoint sets) referenced by outbound routes, by cluster name. */
  clusters: Record<string, Cluster>;
}

export interface ProxyIdentity {
  service: string;
  namespace: string;
  /** SPIFFE ID the proxy's certificate carries. */
  identity: string;
  /** Name of the Workload the proxy registered. */
  workload: string;
}

export interface InboundConfig {
  /** Where the local app listens. */
  appAddress: string;
  appPort: number;
}

export interface OutboundService {
  name: string;
  namespace: string;
  /** Host names (without port) that resolve to this service: "reviews", "reviews.default", ... */
  hosts: string[];
  /** The service's declared port (what `http://reviews:PORT/` uses); 0 when undeclared (any port). */
  port: number;
  protocol: Protocol;
  /** Ordered: the first route whose match accepts the request wins. Always ends with a catch-all when the service has endpoints and no explicit route catches all. */
  routes: Route[];
}

export interface Route {
  /** Stable name used in metrics' `route` label: "<namespace>/<httproute>/<rule index>" or "default". */
  name: string;
  matches: RouteMatch[];
  backends: WeightedBackend[];
}

/** All present conditions must hold. An empty match accepts every request. */
export interface RouteMatch {
  path?: { type: PathMatchType; value: string };
  headers?: { type: "Exact" | "RegularExpression"; name: string; value: string }[];
  queryParams?: { type: "Exact" | "RegularExpression"; name: string; value: string }[];
  method?: string;
}

export interface WeightedBackend {
  cluster: string;
  weight: number;
}

export interface Cluster {
  name: string;
  /** The Service the cluster is (metrics' destination_service). */
  service: string;
  namespace: string;
  endpoints: Endpoint[];
}

export interface Endpoint {
  address: string;
  port: number;
  /** Expected SPIFFE ID of the peer; present ⇒ connect with mTLS and verify it. Absent ⇒ plaintext (no sidecar). */
  identity?: string;
  workload: string;
  labels: Record<string, string>;
  zone?: string;
}
