// Which routes apply to a caller, as the Gateway API's mesh support (GAMMA, GEP-1294) scopes them.
// Shared by every route kind attached to Services (HTTPRoute, GRPCRoute).
//
//   - A route in the Service's own namespace is a *producer* route: it applies to every caller.
//   - A route in another namespace is a *consumer* route: it applies only to callers (proxies) in the
//     route's namespace, so one team cannot change another team's traffic to a shared Service.
//   - For a caller in a namespace that has consumer routes for a Service, those routes replace the
//     Service's producer routes (they are not merged with them); callers elsewhere keep the
//     producer routes. Within one group, routes merge by the usual precedence (routes.ts).
//
// A parentRef attaches a route to a Service when it names kind Service (core group), the Service's
// name and namespace, and — when it sets `port` and the Service declares ports — one of them.

import type { ParentRef, Service } from "../../model/resources.ts";

/** What a route needs for scoping: any route kind with Service parentRefs. */
export interface ParentedRoute {
  metadata: { name: string; namespace: string };
  spec: { parentRefs: ParentRef[] };
}

/** A Service's routes: its producers', and each consumer namespace's. */
export interface ServiceRoutes<R> {
  producer: R[];
  consumers: Map<string, R[]>;
}

/** Routes by the "name.namespace" of each Service they attach to, in input order. */
export function routeScopeIndex<R extends ParentedRoute>(
  routes: readonly R[],
  services: ReadonlyMap<string, Service>,
): Map<string, ServiceRoutes<R>> {
  const out = new Map<string, ServiceRoutes<R>>();
  for (const r of routes) {
    const ns = r.metadata.namespace;
    const keys = new Set<string>();
    for (const p of r.spec.parentRefs) {
      const key = `${p.name}.${p.namespace ?? ns}`;
      const svc = services.get(key);
      if (svc !== undefined && parentAttaches(p, ns, svc)) keys.add(key);
    }
    for (const key of keys) {
      let entry = out.get(key);
      if (entry === undefined) out.set(key, (entry = { producer: [], consumers: new Map() }));
      const svcNs = key.slice(key.indexOf(".") + 1);
      if (ns === svcNs) entry.producer.push(r);
      else {
        let list = entry.consumers.get(ns);
        if (list === undefined) entry.consumers.set(ns, (list = []));
        list.push(r);
      }
    }
  }
  return out;
}

/**
 * The routes that apply to callers in `callerNamespace` for one Service: that namespace's consumer
 * routes when it has any, else the producer routes. `consumer` says which, so a compile cache can
 * share the producer result between namespaces.
 */
export function routesInScope<R>(
  index: ReadonlyMap<string, ServiceRoutes<R>>,
  serviceKey: string,
  callerNamespace: string,
): { routes: readonly R[]; consumer: boolean } {
  return inScope(index.get(serviceKey), callerNamespace);
}

/** routesInScope for one Service's routes. */
export function inScope<R>(
  entry: ServiceRoutes<R> | undefined,
  callerNamespace: string,
): { routes: readonly R[]; consumer: boolean } {
  if (entry === undefined) return { routes: [], consumer: false };
  const own = entry.consumers.get(callerNamespace);
  if (own !== undefined && own.length > 0) return { routes: own, consumer: true };
  return { routes: entry.producer, consumer: false };
}

/** Whether one parentRef of a route in `routeNamespace` attaches it to `svc`. */
export function parentAttaches(p: ParentRef, routeNamespace: string, svc: Service): boolean {
  return (
    (p.kind ?? "Service") === "Service" &&
    (p.group ?? "") in { "": 1, core: 1 } &&
    p.name === svc.metadata.name &&
    (p.namespace ?? routeNamespace) === svc.metadata.namespace &&
    (p.port === undefined ||
      (svc.spec.ports ?? []).length === 0 ||
      (svc.spec.ports ?? []).some((sp) => sp.port === p.port))
  );
}
