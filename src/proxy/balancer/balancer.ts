// Load balancers pick one endpoint of a cluster per request. A family: one file per algorithm
// (round-robin.ts today; least-request, ring-hash and locality-aware later), registered by name.

import { RoundRobin } from "./round-robin.ts";

export interface Balancer<T> {
  /** An item, or undefined when there is none. Called once per request: must not allocate. */
  pick(): T | undefined;
  readonly size: number;
}

export type BalancerAlgorithm = "ROUND_ROBIN";

const ALGORITHMS: Record<BalancerAlgorithm, <T>(items: readonly T[]) => Balancer<T>> = {
  ROUND_ROBIN: (items) => new RoundRobin(items),
};

/** Builds a balancer over `items` (built once per config change). */
export function createBalancer<T>(
  items: readonly T[],
  algorithm: BalancerAlgorithm = "ROUND_ROBIN",
): Balancer<T> {
  return ALGORITHMS[algorithm](items);
}
