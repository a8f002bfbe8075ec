// What is known about one endpoint of a cluster, apart from the set it belongs to: requests in
// flight, the PeakEWMA latency estimate, outlier-detection counters and ejection, slow start, and the
// connect backoff. The state object is shared by key between an EndpointSet and its successor, so
// history survives a config change; the set (endpoint-set.ts) keeps the counts across its endpoints.

/** PeakEWMA: the EWMA's time constant (Linkerd's default decay window). */
export const EWMA_DECAY_MS = 10_000;
/** PeakEWMA: the latency assumed for an endpoint not yet measured (Linkerd's default RTT). */
export const DEFAULT_RTT_MS = 30;
/** Connect backoff after an endpoint's first connect failure; doubles with each further one. */
export const CONNECT_BACKOFF_BASE_MS = 250;
/** Longest connect backoff. */
export const CONNECT_BACKOFF_MAX_MS = 8_000;

/** What is known about one endpoint; shared by key between a set and its successor. */
export class EndpointState {
  inflight = 0;
  /** Peak EWMA of latency (ms) as of `ewmaAt`; decays towards 0 from then on. */
  ewma = DEFAULT_RTT_MS;
  ewmaAt: number;
  failures = 0;
  gatewayFailures = 0;
  ejected = false;
  ejectedUntil = 0;
  /** Ejections so far; the next ejection lasts (ejections + 1) × base. Reset after a quiet spell. */
  ejections = 0;
  /** When the last ejection ended. */
  returnedAt = -Infinity;
  /** Start of the slow-start ramp; NaN when not ramping. */
  rampFrom = NaN;
  /** Connect backoff: picks avoid the endpoint until `unreachableUntil`. */
  unreachable = false;
  unreachableUntil = 0;
  connectFailures = 0;

  constructor(now: number) {
    this.ewmaAt = now;
  }
}

/** How long picks avoid an endpoint after `failures` connect failures in a row. */
export function connectBackoffMs(failures: number): number {
  return Math.min(CONNECT_BACKOFF_BASE_MS * 2 ** Math.min(failures - 1, 20), CONNECT_BACKOFF_MAX_MS);
}

/** Peak EWMA latency as of `now`: decays towards 0 since the last sample, so idle endpoints get probed again. */
export function ewmaAt(s: EndpointState, now: number): number {
  const dt = now - s.ewmaAt;
  return dt <= 0 ? s.ewma : s.ewma * Math.exp(-dt / EWMA_DECAY_MS);
}

/** PeakEWMA's load: expected latency × (requests in flight + 1), as in Linkerd. */
export function cost(s: EndpointState, now: number): number {
  return ewmaAt(s, now) * (s.inflight + 1);
}

/**
 * A latency sample: a peak (above the estimate) is taken at once, so an endpoint that turns slow is
 * avoided from its first slow answer; a lower one is blended in with weight 1 − exp(−Δt/τ), so
 * after a quiet spell the new sample counts for nearly everything and during a burst for little.
 */
export function observe(s: EndpointState, latencyMs: number, now: number): void {
  const rtt = latencyMs > 0 ? latencyMs : 0;
  if (rtt > s.ewma) {
    s.ewma = rtt;
  } else {
    const dt = now - s.ewmaAt;
    const w = dt <= 0 ? 1 : Math.exp(-dt / EWMA_DECAY_MS);
    s.ewma = s.ewma * w + rtt * (1 - w);
  }
  s.ewmaAt = now;
}
