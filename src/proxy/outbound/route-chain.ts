// A route's filter chain, composed once per config change (compile.ts) for routes with features;
// plain routes have none and take the listener's fast path. The order, as in Envoy's HTTP filter
// chain for a route (requests run it top to bottom; see ../filters/filter.ts for composition):
//
//   redirect                answers with a 3xx — nothing after it runs, no backend needed
//   backend                 weighted pick among the rule's backends (500 when it has none)
//   fault                   delay, then abort with the configured status
//   request-header-modifier / response-header-modifier / url-rewrite
//   replay-buffer           when the request may be sent again (retry, hedge) or copied (mirror)
//   mirror                  copies go out; the real request goes on unchanged
//   → attempts              the attempt engine (engine.ts) with the route as its policy:
//                           routed-request.ts (retries, hedging, timeouts), attempt.ts bookkeeping

import { RETRY_DEFAULTS } from "../../model/traffic-defaults.ts";
import { hashKeyOf } from "../balancer/hash-key.ts";
import { modifyHeaders } from "../http/header-list.ts";
import { FaultFilter } from "../filters/fault/fault.ts";
import { compose, type Filter, type Next } from "../filters/filter.ts";
import {
  RequestHeaderModifierFilter,
  ResponseHeaderModifierFilter,
} from "../filters/header-modifier/header-modifier.ts";
import { MirrorFilter } from "../filters/mirror/mirror.ts";
import { RedirectFilter } from "../filters/redirect/redirect.ts";
import { UrlRewriteFilter } from "../filters/url-rewrite/url-rewrite.ts";
import type { Exchange } from "../pipeline/exchange.ts";
import type { CompiledBackend, CompiledRoute, RouteFeatures } from "./compile.ts";
import { ReplayBuffer } from "./replay-buffer.ts";
import type { RouteContext } from "./route-context.ts";
import { ATTEMPTS } from "./engine.ts";

/**
 * The rule's weighted backend pick, shared with the plain path: sets the exchange's stats to the
 * backend's; answers 500 invalid_backend (and returns undefined) when the picked backend is an invalid
 * reference, or when the rule has no backend to forward to at all — no backendRefs, or none with
 * weight > 0. The Gateway API: a rule whose backendRefs are all invalid (or omitted, or empty) and
 * whose filters send no response answers all its traffic 500 (GRPCRoute: UNAVAILABLE, which a gRPC
 * request gets for invalid_backend). A rule with a RequestRedirect never gets here.
 */
export function pickBackend(x: Exchange, route: CompiledRoute, service: string): CompiledBackend | undefined {
  const backend = route.backends.pick();
  if (backend === undefined) {
    x.stats = route.stats;
    x.reply("invalid_backend", `route ${route.name} of ${service} has no backendRefs with weight > 0`);
    return undefined;
  }
  if (backend.invalid !== undefined) {
    // Gateway API: a backendRef that cannot be resolved answers its share of the traffic 500.
    x.stats = route.stats;
    x.reply("invalid_backend", `route ${route.name} of ${service}: ${backend.invalid}`);
    return undefined;
  }
  x.stats = backend.stats;
  return backend;
}

const BACKEND: Filter<RouteContext> = {
  name: "backend",
  onRequest(c: RouteContext, next: Next<RouteContext>): void {
    const backend = pickBackend(c.x, c.route, c.service);
    if (backend === undefined) return;
    const cluster = backend.cluster;
    c.backend = backend;
    c.counters = c.features.counters(cluster.destination);
    if (cluster.hashOn !== undefined) c.hashKey = hashKeyOf(cluster.hashOn, c.x, c.clientAddress);
    next.run(c);
  },
};

/**
 * The picked backend's own header modifiers (Gateway API backendRefs[].filters), after the route's;
 * its response modifier is already composed with the route's at compile time (compile.ts).
 */
const BACKEND_HEADERS: Filter<RouteContext> = {
  name: "backend-header-modifier",
  onRequest(c: RouteContext, next: Next<RouteContext>): void {
    const own = c.backend.filters;
    if (own !== undefined) {
      if (own.requestHeaders !== undefined) modifyHeaders(c.x.headers, own.requestHeaders);
      if (own.responseHeaders !== undefined) c.x.responseHeaders = own.responseHeaders;
    }
    next.run(c);
  },
};

export function routeChain(f: RouteFeatures): Next<RouteContext> {
  const rf = f.filters;
  if (rf?.redirect !== undefined)
    return compose([new RedirectFilter(rf.redirect, f.matchedPrefix)], ATTEMPTS);
  const filters: Filter<RouteContext>[] = [BACKEND];
  if (f.fault !== undefined) filters.push(new FaultFilter(f.fault));
  if (rf?.requestHeaders !== undefined) filters.push(new RequestHeaderModifierFilter(rf.requestHeaders));
  if (rf?.responseHeaders !== undefined) filters.push(new ResponseHeaderModifierFilter(rf.responseHeaders));
  if (f.backendFilters) filters.push(BACKEND_HEADERS);
  if (rf?.rewrite !== undefined) filters.push(new UrlRewriteFilter(rf.rewrite, f.matchedPrefix));
  if (f.retry !== undefined || f.hedge !== undefined || f.mirrors.length > 0)
    filters.push(new ReplayBuffer(f.retry?.maxBufferedBodyBytes ?? RETRY_DEFAULTS.maxBufferedBodyBytes));
  if (f.mirrors.length > 0) filters.push(new MirrorFilter(f.mirrors));
  return compose(filters, ATTEMPTS);
}
