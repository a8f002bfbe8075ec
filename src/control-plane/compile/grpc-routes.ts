// GRPCRoute → proxy routes for one Service, in the snapshot's existing Route shape, so the proxy's
// route matching, filters, retries and balancing work on gRPC calls unchanged.
//
// A gRPC call is an HTTP/2 POST to /<package.Service>/<Method> with content-type application/grpc…
// (gRPC's PROTOCOL-HTTP2.md), so a method match becomes a path match:
//   service S and method M, Exact            → path Exact "/S/M"
//   service S only, Exact                    → path PathPrefix "/S" (whole segments: /S/anything)
//   method M only, Exact                     → path RegularExpression "/[^/]+/M"
//   RegularExpression (either may be absent) → path RegularExpression "/(?:S)/(?:M)", "[^/]+" for an absent part
// and every match also requires method POST and a gRPC content-type, so a GRPCRoute never routes a
// plain HTTP request that happens to share the path.
//
// Precedence (Gateway API GRPCRouteRule): most characters of exact service, then of exact method,
// then most header matches; then the oldest route, then "namespace/name", then rule order.
// Regular-expression matches rank after exact ones of the same part (the spec leaves them to the
// implementation). Timeouts and retry (weft's extension on GRPCRoute rules) compile as an
// HTTPRoute's, with the gRPC statuses of `retry.on` in RetryPolicy.grpcOn.

import type {
  GRPCRetryOn,
  GRPCRoute,
  GRPCRouteMatch,
  GRPCRouteRule,
  HTTPRouteRetry,
  HTTPRouteRule,
  Service,
} from "../../model/resources.ts";
import { GRPC_RETRY_CONDITIONS, type GrpcRetryCondition } from "../../model/grpc-status.ts";
import type { Route, RouteMatch } from "../../model/snapshot.ts";
import { ALL_PORTS, attachedPorts } from "./routes.ts";
import { compileBackendRef, resolveServiceRef, type RefContext } from "./backend-refs.ts";
import { ruleTraffic, type FaultIndex } from "./traffic.ts";

/** weft's default `retry.on` for a GRPCRoute rule: connection-level failures and UNAVAILABLE. */
export const DEFAULT_GRPC_RETRY_ON: readonly GRPCRetryOn[] = [
  "connect-failure",
  "reset",
  "timeout",
  "unavailable",
];

/** Whole-value regular expression for gRPC's content types (application/grpc, +proto, ;params). */
export const GRPC_CONTENT_TYPE_MATCH = "application/grpc([+;].*)?";

interface Candidate {
  route: Route;
  rank: number[];
  created: string;
  key: string;
  index: number;
}

/** `inScope`: the GRPCRoutes attached to `svc` that apply to the caller (route-scope.ts). */
export function attachedGrpcRoutes(
  svc: Service,
  inScope: readonly GRPCRoute[],
  faults: FaultIndex,
  refs: RefContext,
): Route[] {
  const candidates: Candidate[] = [];
  const parent = `${svc.metadata.name}.${svc.metadata.namespace}`;
  for (const gr of inScope) {
    const ports = attachedPorts(gr, svc);
    if (ports === undefined) continue;
    const ns = gr.metadata.namespace;
    const from = { kind: "GRPCRoute", namespace: ns } as const;
    const mirrorTarget = (ref: { name: string; namespace?: string }) => {
      const r = resolveServiceRef(ref, from, parent, refs);
      return r.invalid ? undefined : r.cluster;
    };
    (gr.spec.rules ?? [{}]).forEach((rule, i) => {
      const backends = (rule.backendRefs ?? []).map((b) => compileBackendRef(b, from, parent, refs));
      const traffic = grpcRuleTraffic(rule, ns, faults, mirrorTarget);
      const matches: GRPCRouteMatch[] = rule.matches?.length ? rule.matches : [{}];
      for (const m of matches) {
        candidates.push({
          route: {
            name: `${ns}/${gr.metadata.name}/${rule.name ?? i}`,
            matches: [routeMatch(m)],
            ...(ports === ALL_PORTS ? {} : { ports }),
            backends,
            ...traffic,
          },
          rank: rankOf(m),
          created: gr.metadata.creationTimestamp ?? "",
          key: `${ns}/${gr.metadata.name}`,
          index: candidates.length,
        });
      }
    });
  }
  candidates.sort(
    (a, b) =>
      compareRanks(a.rank, b.rank) ||
      a.created.localeCompare(b.created) ||
      a.key.localeCompare(b.key) ||
      a.index - b.index,
  );
  return candidates.map((c) => c.route);
}

/** A GRPCRoute match as a path + POST + gRPC content-type (+ its own headers) RouteMatch. */
export function routeMatch(m: GRPCRouteMatch): RouteMatch {
  const out: RouteMatch = { path: methodPath(m.method), method: "POST" };
  const headers: NonNullable<RouteMatch["headers"]> = [
    { type: "RegularExpression", name: "content-type", value: GRPC_CONTENT_TYPE_MATCH },
  ];
  for (const h of m.headers ?? [])
    headers.push({ type: h.type ?? "Exact", name: h.name.toLowerCase(), value: h.value });
  out.headers = headers;
  return out;
}

function methodPath(mm: GRPCRouteMatch["method"]): NonNullable<RouteMatch["path"]> {
  if (!mm) return { type: "PathPrefix", value: "/" };
  // The Gateway API allows a leading dot on a fully qualified service; gRPC paths never carry it.
  const service = mm.service?.replace(/^\./, "");
  if ((mm.type ?? "Exact") === "Exact") {
    if (service !== undefined && mm.method !== undefined)
      return { type: "Exact", value: `/${service}/${mm.method}` };
    if (service !== undefined) return { type: "PathPrefix", value: `/${service}` };
    return { type: "RegularExpression", value: `/[^/]+/${mm.method}` };
  }
  const s = mm.service === undefined ? "[^/]+" : `(?:${mm.service})`;
  const m = mm.method === undefined ? "[^/]+" : `(?:${mm.method})`;
  return { type: "RegularExpression", value: `/${s}/${m}` };
}

/** Larger ranks first: [exact service chars, exact method chars, regex parts, header matches]. */
function rankOf(m: GRPCRouteMatch): number[] {
  const mm = m.method;
  const exact = (mm?.type ?? "Exact") === "Exact";
  const regexParts = exact ? 0 : (mm?.service !== undefined ? 1 : 0) + (mm?.method !== undefined ? 1 : 0);
  return [
    exact ? (mm?.service?.replace(/^\./, "").length ?? 0) : 0,
    exact ? (mm?.method?.length ?? 0) : 0,
    regexParts,
    m.headers?.length ?? 0,
  ];
}

function compareRanks(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return b[i]! - a[i]!;
  return 0;
}

/** Filters and timeouts as an HTTPRoute rule's; retry with the gRPC statuses split out into grpcOn. */
function grpcRuleTraffic(
  rule: GRPCRouteRule,
  namespace: string,
  faults: FaultIndex,
  mirrorTarget: (ref: { name: string; namespace?: string }) => string | undefined,
): ReturnType<typeof ruleTraffic> {
  const r = rule.retry;
  const on = r ? (r.on ?? DEFAULT_GRPC_RETRY_ON) : [];
  const grpcOn = on.filter((c): c is GrpcRetryCondition => c in GRPC_RETRY_CONDITIONS);
  const httpRule: HTTPRouteRule = { filters: rule.filters, timeouts: rule.timeouts };
  if (r) {
    httpRule.retry = {
      attempts: r.attempts,
      backoff: r.backoff,
      maxBackoff: r.maxBackoff,
      hedge: r.hedge,
      on: on.filter((c) => !(c in GRPC_RETRY_CONDITIONS)) as NonNullable<HTTPRouteRetry["on"]>,
      // Every gRPC call is a POST: the conditions, not the method, say what is safe to retry.
      nonIdempotent: true,
    };
  }
  const traffic = ruleTraffic(httpRule, namespace, faults, mirrorTarget);
  if (traffic.retry) traffic.retry = { ...traffic.retry, grpcOn };
  return traffic;
}
