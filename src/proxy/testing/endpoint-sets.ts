// Shared by the EndpointSet tests: hand-moved clocks, seeded randomness, endpoint lists, policies,
// and one-call request simulation.

import assert from "node:assert/strict";
import type { ClusterPolicy, LoadBalancerType } from "../../model/snapshot.ts";
import type { EndpointSet, EndpointInput, EndpointSetEvents, Outcome } from "../balancer/endpoint-set.ts";

/** A clock the test moves by hand. */
export function manualClock(start = 1_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

/** Deterministic [0, 1) numbers (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function endpoints(
  n: number,
  zone?: (i: number) => string | undefined,
  from = 0,
): EndpointInput<string>[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return { value: `e${i}`, key: `10.0.0.${i}:8080`, zone: zone?.(i) };
  });
}

export const lb = (
  type: LoadBalancerType,
  extra: Partial<NonNullable<ClusterPolicy["loadBalancer"]>> = {},
): ClusterPolicy => ({
  loadBalancer: { type, ...extra },
});

export const outlier = (o: Partial<NonNullable<ClusterPolicy["outlierDetection"]>> = {}): ClusterPolicy => ({
  loadBalancer: { type: "RoundRobin" },
  outlierDetection: {
    consecutiveFailures: 3,
    consecutiveGatewayErrors: 0,
    baseEjectionMs: 30_000,
    maxEjectionMs: 300_000,
    maxEjectionPercent: 100,
    ...o,
  },
});

/** Sends one request: pick, start, end with `outcome`. Returns the endpoint's value. */
export function send<T>(
  set: EndpointSet<T>,
  outcome: Outcome = "success",
  latencyMs = 1,
  hashKey?: string,
): T {
  const h = set.pick(hashKey)!;
  set.start(h);
  set.end(h, outcome, latencyMs);
  return h.value;
}

/** Records the events, in order. */
export function recorder(): { log: string[]; events: EndpointSetEvents } {
  const log: string[] = [];
  return {
    log,
    events: {
      onEject: (key, reason) => log.push(`eject ${key} ${reason}`),
      onReturn: (key) => log.push(`return ${key}`),
    },
  };
}

export function counts<T>(values: Iterable<T>): Map<T, number> {
  const m = new Map<T, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

/** Fails `key`'s endpoint `n` times in a row, through requests that happen to land on it. */
export function failEndpoint(
  set: EndpointSet<string>,
  value: string,
  n: number,
  outcome: Outcome = "http5xx",
): void {
  let done = 0;
  for (let guard = 0; done < n && guard < 10_000; guard++) {
    const h = set.pick()!;
    set.start(h);
    if (h.value === value) {
      set.end(h, outcome, 1);
      done++;
    } else {
      set.end(h, "success", 1);
    }
  }
  assert.equal(done, n, `could not reach ${value}`);
}
