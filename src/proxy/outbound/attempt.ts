// The bookkeeping of one attempt to a destination, written once for every outbound path: the plain
// forward (listener.ts, where the exchange itself is the attempt and nothing more is allocated),
// routes with retries, hedging or timeouts (routed-request.ts, one Attempt object per try), and
// mirrors (mirror.ts, a shadow attempt). The steps, in order:
//
//   admit   the destination's circuit breaker (maxRequests attempts in flight) → circuit_open
//   pick    the cluster's balancer, skipping ejected / backed-off endpoints (and the one to avoid)
//   begin   the endpoint's load (balancer) and the destination's in-flight count
//   end     the endpoint learns the outcome (outlier detection, latency) and the count drops
//   resend  a request that provably never left the proxy (connect refused, TLS handshake failed,
//           a connection found closed before anything was written) goes to another endpoint at
//           once, on any route, outside the retry policy and budget, at most MAX_RESENDS times
//
// A shadow attempt (mirror) is balanced and observed like the others but holds no request slot:
// the circuit breaker limits the real traffic only.

import type { EndpointHandle, Outcome } from "../balancer/endpoint-set.ts";
import type { CompiledCluster, CompiledEndpoint } from "./compile.ts";
import { notSentOutcome } from "./outcomes.ts";
import { MAX_RESENDS } from "./retry.ts";

export type Endpoint = EndpointHandle<CompiledEndpoint>;

/** The circuit breaker: a refusal's detail when the destination is full (counted), else undefined. */
export function admit(cluster: CompiledCluster): string | undefined {
  const lim = cluster.limits;
  if (lim.maxRequests > 0 && lim.active >= lim.maxRequests) {
    lim.overflowRequests?.inc();
    return `${cluster.destination}: ${lim.maxRequests} requests already in flight`;
  }
  return undefined;
}

/** An endpoint for the next attempt; `avoid` is skipped when another is available. */
export function pick(
  cluster: CompiledCluster,
  hashKey: string | undefined,
  avoid?: Endpoint,
): Endpoint | undefined {
  return cluster.endpoints.pick(hashKey, avoid);
}

/** The detail of a 503 when pick found nothing. */
export function noEndpoints(cluster: CompiledCluster): string {
  return `${cluster.destination} has no endpoints (cluster ${cluster.name})`;
}

/** An attempt starts on `ep`. `shadow`: a mirror, which holds no request slot. */
export function begin(ep: Endpoint, shadow = false): void {
  const cluster = ep.value.cluster;
  cluster.endpoints.start(ep);
  if (!shadow) cluster.limits.active++;
}

/** The attempt on `ep` ended with `outcome`; `startedAt` from performance.now(). */
export function end(ep: Endpoint, outcome: Outcome, startedAt: number, shadow = false): void {
  const cluster = ep.value.cluster;
  if (!shadow) cluster.limits.active--;
  cluster.endpoints.end(ep, outcome, performance.now() - startedAt);
}

/**
 * Where a request that failed with `err` on `ep` may be sent again because it never left the proxy,
 * or undefined (it may have been received, the resends are used up, or no other endpoint is there).
 * The caller ends the failed attempt (with notSentOutcome(err)) and begins one on the target.
 */
export function resendTarget(
  ep: Endpoint,
  err: Error,
  resends: number,
  hashKey: string | undefined,
): Endpoint | undefined {
  const set = ep.value.cluster.endpoints;
  if (resends >= Math.min(MAX_RESENDS, set.size - 1)) return undefined;
  if (notSentOutcome(err) === undefined) return undefined;
  const next = set.pick(hashKey, ep);
  return next === undefined || next.key === ep.key ? undefined : next;
}
