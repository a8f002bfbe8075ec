// A small Prometheus registry: metric families with fixed label names, and series handles that the
// request path binds once (per route, per connection) and then updates with plain field writes.
// Each ProxyMetrics (registry.ts) owns one; nothing here is module-global.

/** One labelled counter or gauge series. */
export class CounterSeries {
  value = 0;
  readonly labels: readonly string[];
  constructor(labels: readonly string[]) {
    this.labels = labels;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

/** One labelled histogram series; `counts[i]` counts observations in bucket i only (not cumulative). */
export class HistogramSeries {
  readonly labels: readonly string[];
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(labels: readonly string[], bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

export type MetricType = "counter" | "gauge" | "histogram";

const SEP = "\u0000";

/** A metric family: name, help, label names, and its series keyed by label values. */
export class MetricFamily<S extends CounterSeries | HistogramSeries> {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  readonly #series = new Map<string, S>();
  readonly #make: (labels: readonly string[]) => S;

  constructor(
    name: string,
    help: string,
    type: MetricType,
    labelNames: readonly string[],
    make: (labels: readonly string[]) => S,
  ) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.labelNames = labelNames;
    this.#make = make;
  }

  /** The series for these label values (same order as labelNames), created on first use. Bind it; don't call per request. */
  series(...values: string[]): S {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`);
    }
    const key = values.join(SEP);
    let s = this.#series.get(key);
    if (s === undefined) {
      s = this.#make(values);
      this.#series.set(key, s);
    }
    return s;
  }

  allSeries(): IterableIterator<S> {
    return this.#series.values();
  }

  /** Drops every series whose label values match; handles bound to them stop being exported. */
  deleteWhere(matches: (labels: readonly string[]) => boolean): number {
    let n = 0;
    for (const [key, s] of this.#series) {
      if (!matches(s.labels)) continue;
      this.#series.delete(key);
      n++;
    }
    return n;
  }

  get size(): number {
    return this.#series.size;
  }
}

/** Default latency buckets in seconds (Envoy/Istio-like, finer at the low end where a sidecar lives). */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export class MetricsRegistry {
  readonly families: MetricFamily<CounterSeries | HistogramSeries>[] = [];

  counter(name: string, help: string, labelNames: readonly string[]): MetricFamily<CounterSeries> {
    return this.#add(new MetricFamily(name, help, "counter", labelNames, (l) => new CounterSeries(l)));
  }

  gauge(name: string, help: string, labelNames: readonly string[]): MetricFamily<CounterSeries> {
    return this.#add(new MetricFamily(name, help, "gauge", labelNames, (l) => new CounterSeries(l)));
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[] = DEFAULT_DURATION_BUCKETS,
  ): MetricFamily<HistogramSeries> {
    const bounds = [...buckets].sort((a, b) => a - b);
    return this.#add(
      new MetricFamily(name, help, "histogram", labelNames, (l) => new HistogramSeries(l, bounds)),
    );
  }

  #add<S extends CounterSeries | HistogramSeries>(f: MetricFamily<S>): MetricFamily<S> {
    if (this.families.some((x) => x.name === f.name)) throw new Error(`metric ${f.name} registered twice`);
    this.families.push(f as unknown as MetricFamily<CounterSeries | HistogramSeries>);
    return f;
  }
}
