// A token bucket on an injected clock: `ratePerSecond` tokens are added continuously up to `burst`;
// each admitted unit of work takes one. It bounds the sustained rate of certificate signing while
// letting a short burst (a handful of proxies starting together) through without waiting.

import type { Clock } from "../../store/store.ts";

export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly #clock: Pick<Clock, "now">;
  #tokens: number;
  #at: number;

  constructor(ratePerSecond: number, burst: number, clock: Pick<Clock, "now">) {
    if (!(ratePerSecond > 0)) throw new RangeError(`rate must be positive, got ${ratePerSecond}`);
    if (!(burst >= 1)) throw new RangeError(`burst must be at least 1, got ${burst}`);
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#at = clock.now();
  }

  /** Takes a token if one is there. */
  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Ms until a token will be there (0 if one is now). */
  waitMs(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1000) / this.ratePerSecond);
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#at);
    this.#at = now;
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
  }
}
