// A route's backendRefs → the snapshot's backends, under the Gateway API's reference rules. Shared by
// every route kind (HTTPRoute, GRPCRoute): resolution depends only on who refers (kind, namespace),
// to what, and for which parent Service.
//
//   - A backend in the route's own namespace is always permitted.
//   - A backend in another namespace needs a ReferenceGrant in that namespace naming the route's kind
//     and namespace (from) and the Service, or every Service (to). One exception: the parent Service
//     itself. A route only reshapes traffic callers already send to that Service, so pointing it back
//     at that Service widens nothing (a consumer route setting timeouts for shop's `reviews` names
//     `reviews.shop` as its backend, with no grant from shop needed).
//   - A permitted backend must name a Service that exists (declared, or registered by a workload).
//
// An unresolved backend keeps its weight and is marked invalid: the proxy answers its share of the
// requests with 500 `invalid_backend` (Gateway API: "the proportion of requests that would otherwise
// have been routed to an invalid backend MUST receive a 500"). The grant is checked before existence,
// so a route cannot probe which Services another namespace has.
//
// GEP-1294 lets mesh routes reach any namespace without a grant, unless the mesh lets a route reach
// more than callers could otherwise; weft's routes do (a backend's cluster is added to every caller of
// the parent, whatever that caller's `reach`, and requests travel with the caller's identity, not the
// route author's), so weft requires the grant. docs/resources.md ("ReferenceGrant") says so.

import type { BackendRef, ReferenceGrant, Service } from "../../model/resources.ts";
import { GATEWAY_API_GROUP } from "../../model/resources.ts";
import type { BackendFilters, InvalidReference, WeightedBackend } from "../../model/snapshot.ts";
import { headerModifier } from "./traffic.ts";

export type RouteKind = "HTTPRoute" | "GRPCRoute";

/** Who makes a reference. */
export interface Referrer {
  kind: RouteKind;
  namespace: string;
}

/** ReferenceGrants by the namespace they open (their own). */
export type GrantIndex = ReadonlyMap<string, readonly ReferenceGrant[]>;

export function grantIndex(grants: readonly ReferenceGrant[]): GrantIndex {
  const out = new Map<string, ReferenceGrant[]>();
  for (const g of grants) {
    let list = out.get(g.metadata.namespace);
    if (list === undefined) out.set(g.metadata.namespace, (list = []));
    list.push(g);
  }
  return out;
}

/** Whether a grant in `namespace` lets `from` refer to the Service `name` there. */
export function serviceGranted(grants: GrantIndex, from: Referrer, namespace: string, name: string): boolean {
  for (const g of grants.get(namespace) ?? []) {
    const fromOk = g.spec.from.some(
      (f) => f.group === GATEWAY_API_GROUP && f.kind === from.kind && f.namespace === from.namespace,
    );
    if (!fromOk) continue;
    if (g.spec.to.some((t) => t.kind === "Service" && (t.name === undefined || t.name === name))) return true;
  }
  return false;
}

export interface RefContext {
  /** Every Service by "name.namespace" (declared and implicit). */
  services: ReadonlyMap<string, Service>;
  grants: GrantIndex;
}

/**
 * Where a reference goes: the cluster "name.namespace", or why it cannot go there. `parent` is the
 * "name.namespace" of the Service the route is being compiled for.
 */
export function resolveServiceRef(
  ref: Pick<BackendRef, "name" | "namespace">,
  from: Referrer,
  parent: string,
  ctx: RefContext,
): { cluster: string; invalid?: InvalidReference } {
  const namespace = ref.namespace ?? from.namespace;
  const cluster = `${ref.name}.${namespace}`;
  if (
    namespace !== from.namespace &&
    cluster !== parent &&
    !serviceGranted(ctx.grants, from, namespace, ref.name)
  ) {
    return {
      cluster,
      invalid: {
        reason: "RefNotPermitted",
        message: `Service ${cluster} is in another namespace and no ReferenceGrant in ${namespace} allows ${from.kind}s from ${from.namespace} to refer to it`,
      },
    };
  }
  if (!ctx.services.has(cluster))
    return { cluster, invalid: { reason: "BackendNotFound", message: `Service ${cluster} does not exist` } };
  return { cluster };
}

/** One rule backendRef as the snapshot's backend: weight, per-backend filters, or why it is invalid. */
export function compileBackendRef(
  ref: BackendRef,
  from: Referrer,
  parent: string,
  ctx: RefContext,
): WeightedBackend {
  const { cluster, invalid } = resolveServiceRef(ref, from, parent, ctx);
  const out: WeightedBackend = { cluster, weight: ref.weight ?? 1 };
  const filters = backendFilters(ref);
  if (filters) out.filters = filters;
  if (invalid) out.invalid = invalid;
  return out;
}

function backendFilters(ref: BackendRef): BackendFilters | undefined {
  const out: BackendFilters = {};
  for (const f of ref.filters ?? []) {
    if (f.type === "RequestHeaderModifier" && f.requestHeaderModifier)
      out.requestHeaders = headerModifier(f.requestHeaderModifier);
    else if (f.type === "ResponseHeaderModifier" && f.responseHeaderModifier)
      out.responseHeaders = headerModifier(f.responseHeaderModifier);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
