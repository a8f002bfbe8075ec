// The attempt engine: where every outbound request that has a backend is sent, from the plain path
// (listener.ts) and from the end of a route's filter chain (route-chain.ts) alike —
// run(x, backend, hashKey, policy, defaults).
//
//   no policy   the plain path: one attempt, and the exchange itself is its handler and its
//               bookkeeping (x.onEnd / x.onNotSent below) — no object or closure per request, as
//               this is the hot path
//   a policy    the route's context (route-context.ts): retries, hedging, timeouts, a replayable
//               body (routed-request.ts, one Attempt object per try)
//
// Both start, end and resend attempts through attempt.ts (claim / end / resend), which upgrades
// (../upgrade/outbound-upgrade.ts) and mirrors (../filters/mirror/) use too.

import { DST_PORT_HEADER } from "../http/dst-port.ts";
import type { LocalReplyCode } from "../errors.ts";
import type { Next } from "../filters/filter.ts";
import type { Exchange } from "../pipeline/exchange.ts";
import type { UpstreamTimeouts } from "../pipeline/timeouts.ts";
import { claim, end, Refusal, resend, type Endpoint } from "./attempt.ts";
import type { CompiledBackend } from "./compile.ts";
import { outcomeOfReply, outcomeOfStatus } from "./outcomes.ts";
import type { RouteContext } from "./route-context.ts";
import { startRouted } from "./routed-request.ts";

/** What the engine takes from its listener, fixed for the listener's life. */
export interface ListenerDefaults {
  readonly timeouts: UpstreamTimeouts;
  /** Named in a 504's detail when the default response-headers timeout fires. */
  readonly timeoutLimit: string | undefined;
}

/** Sends `x` to `backend`: plainly (no `policy`), or under its route's retries, hedging and timeouts. */
export function run(
  x: Exchange,
  backend: CompiledBackend,
  hashKey: string | undefined,
  policy: RouteContext | undefined,
  defaults: ListenerDefaults,
): void {
  if (policy !== undefined) return startRouted(policy);
  const ep = claim(x, backend.cluster, hashKey);
  if (ep instanceof Refusal) return x.reply(ep.code, ep.detail);
  x.accountRef = ep;
  x.timeoutLimit = defaults.timeoutLimit;
  x.onEnd = endPlain;
  x.retryRef = backend;
  x.hashKey = hashKey;
  x.onNotSent = resendPlain;
  x.upstream = ep.value.label;
  // Only a mesh endpoint (its sidecar) learns the port; an app without a sidecar never sees it. (A
  // resend to another endpoint of a mixed cluster keeps the headers of the first.)
  if (x.dstPort !== undefined && ep.value.pool.endpoint.identity !== undefined)
    x.headers.push(DST_PORT_HEADER, x.dstPort);
  x.forwardTo(
    ep.value.pool.dispatcher,
    { host: x.authority ?? (x.host as string), clientAddress: x.clientAddress, proto: "http" },
    defaults.timeouts,
  );
}

/** The terminal of every route chain: the engine, with the route as the policy. */
export const ATTEMPTS: Next<RouteContext> = {
  run(c: RouteContext): void {
    run(c.x, c.backend, c.hashKey, c, c.defaults);
  },
};

/** A plain exchange's request never left the proxy: another endpoint; false when there is none. */
function resendPlain(x: Exchange, err: Error): boolean {
  if (x.upstreamRequest === undefined) return false;
  const backend = x.retryRef as CompiledBackend;
  const next = resend(x, x.accountRef as Endpoint, err, x.resends, x.hashKey, x.startedAt, backend.counters);
  if (next === undefined) return false;
  x.resends++;
  x.accountRef = next;
  x.upstream = next.value.label;
  next.value.pool.dispatcher.dispatch(x.upstreamRequest, x);
  return true;
}

/** Ends a plain exchange's attempt: the endpoint's load and health, the destination's in-flight count. */
function endPlain(x: Exchange, failure: LocalReplyCode | undefined): void {
  const ep = x.accountRef as Endpoint;
  if (failure === "circuit_open") ep.value.cluster.limits.overflowPending?.inc();
  end(ep, failure === undefined ? outcomeOfStatus(x.status) : outcomeOfReply(failure), x.startedAt, x);
}
