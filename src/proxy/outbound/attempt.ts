// The bookkeeping of one attempt to a destination, written once for every outbound path: the plain
// forward (engine.ts, where the exchange itself is the attempt and nothing more is allocated),
// routes with retries, hedging or timeouts (routed-request.ts, one Attempt object per try), upgrades
// (../upgrade/outbound-upgrade.ts, a dedicated connection) and mirrors (../filters/mirror/, a shadow
// attempt). Each path calls the three exported steps and nothing below them:
//
//   claim   circuit breaker (maxRequests attempts in flight) → circuit_open; the cluster's balancer
//           picks an endpoint, skipping ejected / backed-off ones (and the one to avoid) →
//           upstream_unavailable; then the attempt begins: the endpoint's load (balancer) and the
//           destination's in-flight count
//   end     the endpoint learns the outcome (outlier detection, latency) and the count drops
//   resend  a request that provably never left the proxy (connect refused, TLS handshake failed,
//           a connection found closed before anything was written) ends on its endpoint and begins
//           on another at once, on any route, outside the retry policy and budget, at most
//           MAX_RESENDS times
//
// A shadow attempt (mirror) is balanced and observed like the others but holds no request slot:
// the circuit breaker limits the real traffic only. Real attempts are request events
// (../pipeline/events.ts: attemptStart / attemptEnd); shadow ones are not.

import type { EndpointHandle, Outcome } from "../balancer/endpoint-set.ts";
import type { Exchange } from "../pipeline/exchange.ts";
import type { CompiledCluster, CompiledEndpoint, RouteCounters } from "./compile.ts";
import { notSentOutcome } from "./outcomes.ts";
import { MAX_RESENDS } from "./retry.ts";

export type Endpoint = EndpointHandle<CompiledEndpoint>;

/** Why an attempt could not start: the local reply it becomes when it is the request's first. */
export class Refusal {
  readonly code: "circuit_open" | "upstream_unavailable";
  readonly detail: string;
  constructor(code: "circuit_open" | "upstream_unavailable", detail: string) {
    this.code = code;
    this.detail = detail;
  }
}

/**
 * Starts an attempt of `x` (undefined: a shadow attempt) on `cluster`: the circuit check, the pick
 * (`avoid` is skipped when another endpoint is available), then begin. `check` may refuse the picked
 * endpoint before anything is counted (an upgrade's per-endpoint connection limit). Returns the
 * endpoint the attempt runs on, or why none (nothing counted then).
 */
export function claim(
  x: Exchange | undefined,
  cluster: CompiledCluster,
  hashKey: string | undefined,
  avoid?: Endpoint,
  check?: (ep: Endpoint) => Refusal | undefined,
): Endpoint | Refusal {
  if (x !== undefined) {
    const lim = cluster.limits;
    if (lim.maxRequests > 0 && lim.active >= lim.maxRequests) {
      lim.overflowRequests?.inc();
      return new Refusal(
        "circuit_open",
        `${cluster.destination}: ${lim.maxRequests} requests already in flight`,
      );
    }
  }
  const ep = cluster.endpoints.pick(hashKey, avoid);
  if (ep === undefined)
    return new Refusal(
      "upstream_unavailable",
      `${cluster.destination} has no endpoints (cluster ${cluster.name})`,
    );
  if (check !== undefined) {
    const refused = check(ep);
    if (refused !== undefined) return refused;
  }
  begin(ep, x);
  return ep;
}

/** An attempt of `x` starts on `ep` (events: attemptStart); a shadow one holds no request slot. */
function begin(ep: Endpoint, x: Exchange | undefined): void {
  const cluster = ep.value.cluster;
  cluster.endpoints.start(ep);
  if (x === undefined) return;
  cluster.limits.active++;
  const started = x.events.attemptStart;
  if (started !== undefined) started(x, ep.value.label);
}

/** The attempt on `ep` ended with `outcome`; `startedAt` from performance.now(). See claim(). */
export function end(ep: Endpoint, outcome: Outcome, startedAt: number, x: Exchange | undefined): void {
  const cluster = ep.value.cluster;
  if (x !== undefined) cluster.limits.active--;
  cluster.endpoints.end(ep, outcome, performance.now() - startedAt);
  const ended = x?.events.attemptEnd;
  if (ended !== undefined) ended(x as Exchange, ep.value.label, outcome);
}

/**
 * Moves an attempt of `x` that failed with `err` on `ep` to another endpoint, when the error proves
 * the request never left the proxy: the failed attempt ends (the endpoint learns it now), one
 * begins on the new endpoint, and `counters` count a "not-sent" retry. Returns the new endpoint
 * (the caller sends there), or undefined — the request may have been received, `resends` are used
 * up, or no other endpoint is there — and then nothing changed: the caller ends the attempt itself.
 */
export function resend(
  x: Exchange,
  ep: Endpoint,
  err: Error,
  resends: number,
  hashKey: string | undefined,
  startedAt: number,
  counters: RouteCounters,
): Endpoint | undefined {
  const set = ep.value.cluster.endpoints;
  if (resends >= Math.min(MAX_RESENDS, set.size - 1)) return undefined;
  const outcome = notSentOutcome(err);
  if (outcome === undefined) return undefined;
  const next = set.pick(hashKey, ep);
  if (next === undefined || next.key === ep.key) return undefined;
  end(ep, outcome, startedAt, x);
  begin(next, x);
  counters.retry("not-sent").inc();
  return next;
}
