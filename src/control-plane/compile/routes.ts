// HTTPRoute → ordered proxy routes for one Service, following the Gateway API's precedence rules:
// one proxy route per (rule, match) pair, sorted so the most specific match is tried first. Each
// route carries its rule's filters, timeouts, retry and mirrors (traffic.ts), and its backends as
// backend-refs.ts resolves them. Which HTTPRoutes apply to a given caller is route-scope.ts' call.

import type { HTTPRoute, HTTPRouteMatch, Service } from "../../model/resources.ts";
import type { Route, RouteMatch } from "../../model/snapshot.ts";
import { compileBackendRef, resolveServiceRef, type RefContext } from "./backend-refs.ts";
import { ruleTraffic, type FaultIndex } from "./traffic.ts";
import type { ParentedRoute } from "./route-scope.ts";

interface Candidate {
  route: Route;
  match: RouteMatch;
  created: string;
  key: string;
  index: number;
}

/** `attached`: the HTTPRoutes attached to `svc` that apply to the caller (route-scope.ts). */
export function attachedRoutes(
  svc: Service,
  attached: readonly HTTPRoute[],
  faults: FaultIndex,
  refs: RefContext,
): Route[] {
  const candidates: Candidate[] = [];
  const parent = `${svc.metadata.name}.${svc.metadata.namespace}`;
  for (const hr of attached) {
    const ports = attachedPorts(hr, svc);
    if (ports === undefined) continue;
    const ns = hr.metadata.namespace;
    const from = { kind: "HTTPRoute", namespace: ns } as const;
    // A mirror whose backend cannot be resolved is left out: mirrored copies are fire-and-forget,
    // so there is no caller to answer 500 to.
    const mirrorTarget = (ref: { name: string; namespace?: string }) => {
      const r = resolveServiceRef(ref, from, parent, refs);
      return r.invalid ? undefined : r.cluster;
    };
    (hr.spec.rules ?? [{}]).forEach((rule, i) => {
      const backends = (rule.backendRefs ?? []).map((b) => compileBackendRef(b, from, parent, refs));
      const traffic = ruleTraffic(rule, ns, faults, mirrorTarget);
      const matches: HTTPRouteMatch[] = rule.matches?.length ? rule.matches : [{}];
      for (const m of matches) {
        const match = normalizeMatch(m);
        candidates.push({
          route: {
            name: `${ns}/${hr.metadata.name}/${rule.name ?? i}`,
            matches: [match],
            ...(ports === ALL_PORTS ? {} : { ports }),
            backends,
            ...traffic,
          },
          match,
          created: hr.metadata.creationTimestamp ?? "",
          key: `${ns}/${hr.metadata.name}`,
          index: candidates.length,
        });
      }
    });
  }
  candidates.sort(byPrecedence);
  return candidates.map((c) => c.route);
}

export const ALL_PORTS: number[] = [];

/**
 * Which ports of `svc` the route attaches to: ALL_PORTS when a parentRef names the Service without a
 * port (or the Service declares none), the ports its parentRefs' `port` / `sectionName` name
 * otherwise (sorted), undefined when it does not attach at all. A parentRef naming a port the Service
 * does not declare attaches nowhere (Gateway API: the route is not accepted for that parent).
 */
export function attachedPorts(hr: ParentedRoute, svc: Service): number[] | undefined {
  const declared = svc.spec.ports ?? [];
  let out: Set<number> | undefined;
  for (const p of hr.spec.parentRefs) {
    if ((p.kind ?? "Service") !== "Service" || !((p.group ?? "") in { "": 1, core: 1 })) continue;
    if (p.name !== svc.metadata.name || (p.namespace ?? hr.metadata.namespace) !== svc.metadata.namespace)
      continue;
    if ((p.port === undefined && p.sectionName === undefined) || declared.length === 0) return ALL_PORTS;
    const sp = declared.find(
      (d) =>
        (p.port === undefined || d.port === p.port) &&
        (p.sectionName === undefined || d.name === p.sectionName),
    );
    if (sp !== undefined) (out ??= new Set()).add(sp.port);
  }
  return out && [...out].sort((a, b) => a - b);
}

function normalizeMatch(m: HTTPRouteMatch): RouteMatch {
  const out: RouteMatch = {};
  out.path = { type: m.path?.type ?? "PathPrefix", value: m.path?.value ?? "/" };
  if (m.headers?.length)
    out.headers = m.headers.map((h) => ({
      type: h.type ?? "Exact",
      name: h.name.toLowerCase(),
      value: h.value,
    }));
  if (m.queryParams?.length)
    out.queryParams = m.queryParams.map((q) => ({ type: q.type ?? "Exact", name: q.name, value: q.value }));
  if (m.method) out.method = m.method;
  return out;
}

// Gateway API precedence: Exact path, then regular expressions (implementation-specific in the spec;
// weft puts them before prefixes), then longest prefix, then method, then most headers, then most
// query params, then the oldest route, then route name, then rule order.
function byPrecedence(a: Candidate, b: Candidate): number {
  return (
    pathRank(b.match) - pathRank(a.match) ||
    (b.match.method ? 1 : 0) - (a.match.method ? 1 : 0) ||
    (b.match.headers?.length ?? 0) - (a.match.headers?.length ?? 0) ||
    (b.match.queryParams?.length ?? 0) - (a.match.queryParams?.length ?? 0) ||
    a.created.localeCompare(b.created) ||
    a.key.localeCompare(b.key) ||
    a.index - b.index
  );
}

function pathRank(m: RouteMatch): number {
  const p = m.path!;
  if (p.type === "Exact") return 1_000_000 + p.value.length;
  if (p.type === "RegularExpression") return 500_000 + p.value.length;
  return p.value.length;
}
