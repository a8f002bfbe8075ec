// A pick-only balancer over a plain list, for callers that need no feedback from requests. The
// outbound path's endpoint selection (every ClusterPolicy algorithm, locality, outlier detection,
// slow start) is EndpointSet in endpoint-set.ts, which needs start()/end() around each request.

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
