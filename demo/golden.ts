// Golden signals (requests/s, success rate, latency quantiles) from two scrapes of a proxy's
// /metrics: the counters' difference over the time between them, as Prometheus' rate() and
// histogram_quantile() would compute it. On a service's own sidecar the direction="inbound" series
// are the requests that service served; the direction="outbound" series, per destination_service,
// are what its calls to others got — after the caller's sidecar retried, injected faults or refused
// them (circuit breaking), none of which the destination's own sidecar sees.

import { matches, type Sample } from "./prometheus.ts";

export const REQUESTS = "weft_requests_total";
export const DURATION_BUCKET = "weft_request_duration_seconds_bucket";

/** Cumulative counts read from one scrape (or the difference of two). */
export interface Counts {
  requests: number;
  /** Requests answered 5xx or 429 (refused by a rate limit), or with no response at all (code 0). */
  failures: number;
  /** Histogram: upper bound in seconds (`le`) → requests at most that slow. */
  buckets: Map<number, number>;
}

export interface Signals {
  /** Requests per second over the window; undefined before there are two scrapes. */
  rps?: number;
  /** Fraction of requests not answered 5xx or 429; undefined when there were none. */
  success?: number;
  /** Latency quantiles in seconds; undefined when there were no requests. */
  p50?: number;
  p99?: number;
  /** Requests since the proxy started. */
  total: number;
}

export function emptyCounts(): Counts {
  return { requests: 0, failures: 0, buckets: new Map() };
}

/** The inbound counts in one scrape, summed over every label set (routes, sources, codes). */
export function inboundCounts(
  samples: Sample[],
  match: Record<string, string> = { direction: "inbound" },
): Counts {
  const c = emptyCounts();
  for (const s of samples) if (matches(s.labels, match)) count(c, s);
  return c;
}

/** The outbound counts in one scrape, per destination_service ("reviews-v2.default"). */
export function outboundCounts(samples: Sample[]): Map<string, Counts> {
  const out = new Map<string, Counts>();
  for (const s of samples) {
    if (s.labels.direction !== "outbound" || !s.labels.destination_service) continue;
    let c = out.get(s.labels.destination_service);
    if (!c) out.set(s.labels.destination_service, (c = emptyCounts()));
    count(c, s);
  }
  return out;
}

function count(c: Counts, s: Sample): void {
  if (s.name === REQUESTS) {
    c.requests += s.value;
    if (isFailure(s.labels.response_code)) c.failures += s.value;
  } else if (s.name === DURATION_BUCKET) {
    const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
    if (!Number.isNaN(le)) c.buckets.set(le, (c.buckets.get(le) ?? 0) + s.value);
  }
}

/** Not a success: 5xx, 429 (a rate limit refused it: not served either), or no response at all. */
function isFailure(code: string | undefined): boolean {
  return code === undefined || code === "" || code === "0" || code === "429" || code.startsWith("5");
}

/** What happened between two scrapes. A counter that went down means the proxy restarted: count from zero. */
export function delta(prev: Counts, cur: Counts): Counts {
  if (cur.requests < prev.requests) return cur;
  const buckets = new Map<number, number>();
  for (const [le, n] of cur.buckets) buckets.set(le, Math.max(0, n - (prev.buckets.get(le) ?? 0)));
  return {
    requests: cur.requests - prev.requests,
    failures: Math.max(0, cur.failures - prev.failures),
    buckets,
  };
}

/** Adds counts of several instances (e.g. reviews v1, v2 and v3 into one `reviews` row). */
export function add(a: Counts, b: Counts): Counts {
  const buckets = new Map(a.buckets);
  for (const [le, n] of b.buckets) buckets.set(le, (buckets.get(le) ?? 0) + n);
  return { requests: a.requests + b.requests, failures: a.failures + b.failures, buckets };
}

/**
 * The q-quantile of a cumulative histogram, interpolating linearly inside the bucket it falls in
 * (Prometheus' histogram_quantile). In the +Inf bucket it answers the highest finite bound.
 */
export function histogramQuantile(q: number, buckets: Map<number, number>): number | undefined {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  if (sorted.length === 0) return undefined;
  const total = sorted[sorted.length - 1][1];
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      if (count === lowerCount) return le;
      return lowerBound + (le - lowerBound) * ((rank - lowerCount) / (count - lowerCount));
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}

/** Signals over a window of `seconds` whose counts are `window`; `total` is the cumulative request count. */
export function signals(window: Counts | undefined, seconds: number, total: number): Signals {
  if (!window || !(seconds > 0)) return { total };
  const out: Signals = { total, rps: window.requests / seconds };
  if (window.requests > 0) {
    out.success = 1 - window.failures / window.requests;
    out.p50 = histogramQuantile(0.5, window.buckets);
    out.p99 = histogramQuantile(0.99, window.buckets);
  }
  return out;
}
