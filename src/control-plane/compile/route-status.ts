// The status of an HTTPRoute or GRPCRoute, shaped as the Gateway API's RouteStatus: `parents[]`, one
// entry per parentRef, each with the conditions
//
//   Accepted      True; False/NoMatchingParent when the parent Service does not exist, or the
//                 parentRef's port / sectionName names a port the Service does not declare (the
//                 route then attaches nowhere for that parent: routes.ts' attachedPorts);
//   ResolvedRefs  True when every backendRef (and RequestMirror backendRef) of every rule resolves;
//                 False with the first problem's reason — BackendNotFound, RefNotPermitted (another
//                 namespace, no ReferenceGrant) or InvalidKind — and every problem in the message.
//
// Resolution is per parent, as the compiler does it (backend-refs.ts): a backendRef to the parent
// Service itself needs no grant, so one route can resolve for one parent and not for another.
// Pure, from the same prepared state the compiler uses; the config API computes it whenever a route
// is read, so it always describes the current config. Nothing stores it, so conditions carry no
// lastTransitionTime or observedGeneration.

import type { BackendRef, GRPCRoute, HTTPRoute, ParentRef } from "../../model/resources.ts";
import { resolveServiceRef, type RefContext, type RouteKind } from "./backend-refs.ts";

export const ROUTE_CONTROLLER_NAME = "weft.dev/control-plane";

export interface RouteCondition {
  type: "Accepted" | "ResolvedRefs";
  status: "True" | "False";
  reason: string;
  message: string;
}

export interface RouteParentStatus {
  parentRef: ParentRef;
  controllerName: string;
  conditions: RouteCondition[];
}

export interface RouteStatus {
  parents: RouteParentStatus[];
}

/** At most this many problems are named in one condition's message (the reason says the first). */
const MAX_LISTED = 5;

export function routeStatus(route: HTTPRoute | GRPCRoute, refs: RefContext): RouteStatus {
  return { parents: route.spec.parentRefs.map((p) => parentStatus(route, p, refs)) };
}

function parentStatus(route: HTTPRoute | GRPCRoute, p: ParentRef, refs: RefContext): RouteParentStatus {
  const parent = `${p.name}.${p.namespace ?? route.metadata.namespace}`;
  return {
    parentRef: p,
    controllerName: ROUTE_CONTROLLER_NAME,
    conditions: [accepted(p, parent, refs), resolvedRefs(route, parent, refs)],
  };
}

function accepted(p: ParentRef, parent: string, refs: RefContext): RouteCondition {
  const svc = refs.services.get(parent);
  const no = (message: string): RouteCondition => ({
    type: "Accepted",
    status: "False",
    reason: "NoMatchingParent",
    message,
  });
  if (svc === undefined) return no(`Service ${parent} does not exist`);
  const declared = svc.spec.ports ?? [];
  if (declared.length > 0 && (p.port !== undefined || p.sectionName !== undefined)) {
    const match = declared.some(
      (d) =>
        (p.port === undefined || d.port === p.port) &&
        (p.sectionName === undefined || d.name === p.sectionName),
    );
    if (!match) {
      let which = p.port === undefined ? "port" : `port ${p.port}`;
      if (p.sectionName !== undefined) which += ` named ${JSON.stringify(p.sectionName)}`;
      return no(`Service ${parent} declares no ${which}`);
    }
  }
  return { type: "Accepted", status: "True", reason: "Accepted", message: `attached to Service ${parent}` };
}

function resolvedRefs(route: HTTPRoute | GRPCRoute, parent: string, refs: RefContext): RouteCondition {
  const from = { kind: route.kind as RouteKind, namespace: route.metadata.namespace };
  const problems: { reason: string; message: string }[] = [];
  const check = (ref: BackendRef, path: string) => {
    if ((ref.kind ?? "Service") !== "Service" || !((ref.group ?? "") in { "": 1, core: 1 })) {
      const kind = `${ref.group ? `${ref.group}/` : ""}${ref.kind ?? "Service"}`;
      problems.push({ reason: "InvalidKind", message: `${path}: ${kind} is not a Service` });
      return;
    }
    const r = resolveServiceRef(ref, from, parent, refs);
    if (r.invalid) problems.push({ reason: r.invalid.reason, message: `${path}: ${r.invalid.message}` });
  };
  (route.spec.rules ?? []).forEach((rule, i) => {
    (rule.filters ?? []).forEach((f, j) => {
      if (f.requestMirror) check(f.requestMirror.backendRef, `spec.rules[${i}].filters[${j}].requestMirror`);
    });
    (rule.backendRefs ?? []).forEach((b, j) => check(b, `spec.rules[${i}].backendRefs[${j}]`));
  });
  if (problems.length === 0)
    return {
      type: "ResolvedRefs",
      status: "True",
      reason: "ResolvedRefs",
      message: "every reference resolves",
    };
  const listed = problems.slice(0, MAX_LISTED).map((p) => p.message);
  if (problems.length > MAX_LISTED) listed.push(`and ${problems.length - MAX_LISTED} more`);
  return { type: "ResolvedRefs", status: "False", reason: problems[0].reason, message: listed.join("; ") };
}

/** `route` with its status (a copy; the stored resource is not changed). */
export function withRouteStatus<R extends HTTPRoute | GRPCRoute>(route: R, refs: RefContext): R {
  return { ...route, status: routeStatus(route, refs) as unknown as Record<string, unknown> };
}
