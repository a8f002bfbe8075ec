// The inbound local rate limit as a filter (config: the snapshot's inbound.rateLimit). Consulted once
// the peer is known and the head is valid: an empty bucket answers 429 `rate_limited` with
// Retry-After (whole seconds, rounded up, RFC 9110) and counts weft_rate_limited_total for the
// caller; otherwise the request goes on. Buckets are keyed by SPIFFE ID when perSource is set;
// plaintext PERMISSIVE peers have none and share one bucket.

import type { RateLimit } from "../../../model/snapshot.ts";
import type { CounterSeries } from "../../metrics/families.ts";
import type { Exchange } from "../../pipeline/exchange.ts";
import type { Filter, Next } from "../filter.ts";
import type { RateLimiter } from "./rate-limiter.ts";

export class RateLimitFilter implements Filter<Exchange> {
  readonly name = "rate-limit";
  readonly #limiter: RateLimiter;
  readonly #detail: string;
  readonly #limitedFor: (source: string) => CounterSeries;

  constructor(limiter: RateLimiter, detail: string, limitedFor: (source: string) => CounterSeries) {
    this.#limiter = limiter;
    this.#detail = detail;
    this.#limitedFor = limitedFor;
  }

  onRequest(x: Exchange, next: Next<Exchange>): void {
    const waitMs = this.#limiter.take(x.peer?.id ?? "");
    if (waitMs <= 0) return next.run(x);
    this.#limitedFor(x.peer?.service ?? "unknown").value++;
    x.reply("rate_limited", this.#detail, false, undefined, [
      "retry-after",
      String(Math.ceil(waitMs / 1000)),
    ]);
  }
}

/** The refusal's detail: what the limit is and whom it applies to. */
export function describeLimit(destination: string, rl: RateLimit): string {
  const scope = rl.perSource ? "from each caller (by SPIFFE ID)" : "to this instance";
  return `${destination} accepts ${rl.requestsPerSecond} requests/s (burst ${rl.burst}) ${scope}`;
}
