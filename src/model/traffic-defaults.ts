// Defaults of the traffic-management fields (HTTPRoute filters and retry, TrafficPolicy,
// FaultInjection), in one place for the validators (which check user values against them), the
// compiler (which applies them: stored resources keep only what the user wrote) and the docs.

import type { LoadBalancerType } from "./snapshot.ts";

export const LOAD_BALANCER_TYPES = [
  "RoundRobin",
  "Random",
  "LeastRequest",
  "PeakEWMA",
  "RingHash",
  "Maglev",
] as const satisfies readonly LoadBalancerType[];

/** Consistent-hash balancers: they need to know what to hash, and take a table size. */
export const HASH_BALANCERS: readonly LoadBalancerType[] = ["RingHash", "Maglev"];

export const TRAFFIC_POLICY_DEFAULTS = {
  /**
   * The balancer a proxy uses when nothing says otherwise. Least-request (power of two choices)
   * adapts to slow or busy endpoints with no tuning at O(1) cost per pick; ties fall back to
   * round-robin order.
   */
  loadBalancerType: "LeastRequest" as LoadBalancerType,
  /** Maglev's table must be prime; 65537 is Maglev's own recommended default. */
  maglevTableSize: 65_537,
  /** Minimum ring entries for RingHash. */
  ringHashTableSize: 1_024,
  localityEnabled: true,
  localityMinHealthyPercent: 70,
  consecutiveFailures: 5,
  /** 0 = only consecutiveFailures ejects. */
  consecutiveGatewayErrors: 0,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
  retryBudgetPercent: 20,
  retryBudgetMinPerSecond: 10,
  healthCheckIntervalMs: 5_000,
  healthCheckTimeoutMs: 1_000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
  healthCheckPath: "/",
  rateLimitPerSource: false,
} as const;

/** Upper bounds that keep tables and counters sane. Envoy caps its ring at 8M entries; so does weft. */
export const TRAFFIC_POLICY_LIMITS = {
  tableSize: 8_388_608,
  count: 2 ** 31 - 1,
  expectedStatuses: 16,
} as const;

export const FAULT_DEFAULTS = { percent: 100 } as const;

/** The Gateway API CRD's default redirect status; the validator fills it in, as Kubernetes would. */
export const DEFAULT_REDIRECT_STATUS_CODE = 302;
/** The Gateway API CRD's default fraction denominator: a numerator alone is a percentage. */
export const DEFAULT_FRACTION_DENOMINATOR = 100;

/** weft's retry defaults (HTTPRoute rule `retry`), applied at compile time. */
export const RETRY_DEFAULTS = {
  attempts: 1,
  backoffMs: 25,
  /** maxBackoff defaults to this many times the backoff. */
  maxBackoffFactor: 10,
  maxHedges: 1,
  /** Bodies up to this size are buffered so an attempt can be replayed. */
  maxBufferedBodyBytes: 65_536,
} as const;
