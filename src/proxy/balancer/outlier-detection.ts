// Outlier detection's rules for one endpoint (docs/balancing.md): which outcomes count, when a run of
// failures ejects, how many of a cluster may be out at once, and how long an ejection lasts. The set
// (endpoint-set.ts) applies them and keeps the cluster-wide counts; these functions only read and
// write one endpoint's state, so the rules can be read (and tested) on their own.

import type { ClusterPolicy } from "../../model/snapshot.ts";
import type { EndpointState } from "./endpoint-state.ts";

export type OutlierPolicy = NonNullable<ClusterPolicy["outlierDetection"]>;
export type EjectionReason = "consecutive_failures" | "consecutive_gateway_errors";
/** What the end of a request or attempt says about the endpoint. */
export type Outcome =
  | "success"
  /** A 5xx other than 502/503/504. */
  | "http5xx"
  /** 502, 503, 504. */
  | "gateway"
  | "connect"
  | "reset"
  | "timeout"
  /** Says nothing about the endpoint (a 4xx, a request the client cancelled): neutral. */
  | "local";

/** Counts an outcome; returns why the endpoint should be ejected now, if it should. */
export function countOutcome(
  s: EndpointState,
  outcome: Outcome,
  od: OutlierPolicy,
): EjectionReason | undefined {
  if (outcome === "success") {
    s.failures = 0;
    s.gatewayFailures = 0;
    return undefined;
  }
  if (outcome === "local" || s.ejected) return undefined; // neutral; or answers sent before the ejection
  s.failures++;
  // As in Envoy, a 5xx that is not a gateway error breaks a run of gateway errors.
  if (outcome === "http5xx") s.gatewayFailures = 0;
  else s.gatewayFailures++;
  if (od.consecutiveGatewayErrors > 0 && s.gatewayFailures >= od.consecutiveGatewayErrors)
    return "consecutive_gateway_errors";
  if (od.consecutiveFailures > 0 && s.failures >= od.consecutiveFailures) return "consecutive_failures";
  return undefined;
}

/**
 * How many of `n` endpoints may be ejected at once: floor(n × max% / 100), but at least one when
 * max% > 0 and there are two or more (a 10 % cap on a 3-endpoint cluster would otherwise never eject).
 */
export function maxEjected(n: number, od: OutlierPolicy): number {
  const max = Math.floor((n * od.maxEjectionPercent) / 100);
  return max < 1 && od.maxEjectionPercent > 0 && n >= 2 ? 1 : max;
}

/** Ejects: the n-th ejection in a row lasts n × base (capped); the multiplier decays after the cap. */
export function beginEjection(s: EndpointState, od: OutlierPolicy, now: number): void {
  const cap = Math.max(od.maxEjectionMs, od.baseEjectionMs);
  // Back and not ejected again for maxEjectionMs means a fresh start.
  if (now - s.returnedAt >= cap) s.ejections = 0;
  s.ejections++;
  s.ejected = true;
  s.ejectedUntil = now + Math.min(od.baseEjectionMs * s.ejections, cap);
  s.failures = 0;
  s.gatewayFailures = 0;
  s.rampFrom = NaN;
}
