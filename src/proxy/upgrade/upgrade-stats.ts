// Metric handles of upgraded connections (weft_upgrades_*, ../metrics/registry.ts), bound once per
// (direction, source, destination, protocol) and kept per config version: a config change may drop
// a destination's series (retainDestinations), so handles are bound again after one.

import type { CounterSeries, HistogramSeries } from "../metrics/families.ts";
import type { Direction, ProxyMetrics } from "../metrics/registry.ts";
import type { UpgradeProtocol } from "./upgrade-head.ts";

export type UpgradeOutcome = "101" | "refused" | "error";

export class UpgradeStats {
  readonly active: CounterSeries;
  readonly duration: HistogramSeries;
  /** From the client, after the 101. */
  readonly received: CounterSeries;
  /** To the client, after the 101. */
  readonly sent: CounterSeries;
  readonly #outcomes: Record<UpgradeOutcome, CounterSeries>;

  constructor(metrics: ProxyMetrics, labels: [Direction, string, string, UpgradeProtocol]) {
    this.active = metrics.upgradesActive.series(...labels);
    this.duration = metrics.upgradeDuration.series(...labels);
    this.received = metrics.upgradeReceivedBytes.series(...labels);
    this.sent = metrics.upgradeSentBytes.series(...labels);
    this.#outcomes = {
      "101": metrics.upgrades.series(...labels, "101"),
      refused: metrics.upgrades.series(...labels, "refused"),
      error: metrics.upgrades.series(...labels, "error"),
    };
  }

  outcome(o: UpgradeOutcome): void {
    this.#outcomes[o].value++;
  }
}

/** One per listener: the handles for the current config version. */
export class UpgradeStatsTable {
  readonly #metrics: ProxyMetrics;
  readonly #direction: Direction;
  #version: string | undefined;
  #byKey = new Map<string, UpgradeStats>();

  constructor(metrics: ProxyMetrics, direction: Direction) {
    this.#metrics = metrics;
    this.#direction = direction;
  }

  get(version: string, source: string, destination: string, protocol: UpgradeProtocol): UpgradeStats {
    if (version !== this.#version) {
      this.#version = version;
      this.#byKey = new Map();
    }
    const key = `${source} ${destination} ${protocol}`;
    let s = this.#byKey.get(key);
    if (s === undefined) {
      s = new UpgradeStats(this.#metrics, [this.#direction, source, destination, protocol]);
      this.#byKey.set(key, s);
    }
    return s;
  }
}
