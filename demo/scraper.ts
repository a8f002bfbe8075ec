// Scrapes every demo sidecar's admin /metrics and turns the last scrapes into one summary row per
// service, plus one row per version when a service runs several (reviews v1/v2/v3). Rates and
// quantiles cover a sliding window (default the last 10 s), so a traffic shift shows within seconds.
//
// A service's row is what its own sidecars served (inbound). Beside it, `callers` is what the
// service's callers got, from their sidecars' outbound series: retries, injected faults and circuit
// breaking happen in the caller's sidecar, so only that side shows them.

import { get } from "node:http";
import {
  add,
  delta,
  emptyCounts,
  inboundCounts,
  outboundCounts,
  signals,
  type Counts,
  type Signals,
} from "./golden.ts";
import { parsePrometheusText } from "./prometheus.ts";

export interface ScrapeTarget {
  service: string;
  /** e.g. "v2"; shown as its own row when the service has several versions. */
  version: string;
  adminPort: number;
  /** Scraped only for the calls it makes (the demo's traffic): no row of its own. */
  hidden?: boolean;
}

export interface SummaryRow {
  /** "reviews", or "reviews/v2" for a version row. */
  key: string;
  /** What the table shows: the service, or the version under it. */
  name: string;
  /** A version row under its service's row. */
  sub: boolean;
  signals: Signals;
  /**
   * Service rows: the same signals as the service's callers measured them (their sidecars' outbound
   * requests to it or to its subsets, e.g. reviews-v2). Undefined on version rows, since a caller
   * that calls `reviews` does not say which version answered.
   */
  callers?: Signals;
  /** Why some of this row's metrics are missing (scrape failed), if they are. */
  error?: string;
}

interface Point {
  t: number;
  counts: Counts;
  /** Outbound, by destination_service. */
  outbound: Map<string, Counts>;
}

export type FetchText = (port: number) => Promise<string>;

export class MetricsScraper {
  readonly targets: ScrapeTarget[];
  private readonly windowMs: number;
  private readonly fetchText: FetchText;
  private readonly history = new Map<ScrapeTarget, Point[]>();
  private readonly errors = new Map<ScrapeTarget, string>();

  constructor(targets: ScrapeTarget[], opts: { windowMs?: number; fetchText?: FetchText } = {}) {
    this.targets = targets;
    this.windowMs = opts.windowMs ?? 10_000;
    this.fetchText = opts.fetchText ?? fetchMetrics;
    for (const t of targets) this.history.set(t, []);
  }

  /** Scrapes every target once (in parallel); a failed scrape is remembered as the target's error. */
  async scrape(now = Date.now()): Promise<void> {
    await Promise.all(
      this.targets.map(async (t) => {
        try {
          const samples = parsePrometheusText(await this.fetchText(t.adminPort));
          const points = this.history.get(t)!;
          points.push({ t: now, counts: inboundCounts(samples), outbound: outboundCounts(samples) });
          // Keep the newest point plus everything inside the window (and one point just before it).
          while (points.length > 2 && points[1].t <= now - this.windowMs) points.shift();
          this.errors.delete(t);
        } catch (err) {
          this.errors.set(t, `admin :${t.adminPort}: ${(err as Error).message}`);
        }
      }),
    );
  }

  /** Rows in target order: a service's row, then its versions' rows if it has more than one. */
  rows(): SummaryRow[] {
    const services = [...new Set(this.targets.filter((t) => !t.hidden).map((t) => t.service))];
    const callers = this.callerWindows(services);
    const out: SummaryRow[] = [];
    for (const service of services) {
      const members = this.targets.filter((t) => t.service === service);
      const windows = members.map((t) => this.window(t));
      let total = 0;
      let sum: Counts | undefined;
      let seconds = 0;
      for (const w of windows) {
        total += w.total;
        if (!w.counts) continue;
        sum = add(sum ?? emptyCounts(), w.counts);
        seconds = Math.max(seconds, w.seconds);
      }
      const errors = members.map((t) => this.errors.get(t)).filter((e): e is string => !!e);
      const seen = callers.get(service);
      out.push({
        key: service,
        name: service,
        sub: false,
        signals: signals(sum, seconds, total),
        callers: signals(seen?.counts, seen?.seconds ?? 0, seen?.total ?? 0),
        ...(errors.length ? { error: errors[0] } : {}),
      });
      if (members.length < 2) continue;
      members.forEach((t, i) => {
        const w = windows[i];
        const err = this.errors.get(t);
        out.push({
          key: `${service}/${t.version}`,
          name: t.version,
          sub: true,
          signals: signals(w.counts, w.seconds, w.total),
          ...(err ? { error: err } : {}),
        });
      });
    }
    return out;
  }

  /**
   * Per service: every target's outbound requests to it, over the window. A destination belongs to
   * the service it names, or whose subset it is by the demo's naming (reviews-v2 → reviews).
   */
  private callerWindows(
    services: string[],
  ): Map<string, { counts?: Counts; seconds: number; total: number }> {
    const out = new Map<string, { counts?: Counts; seconds: number; total: number }>();
    for (const t of this.targets) {
      const points = this.history.get(t)!;
      const last = points[points.length - 1];
      if (!last) continue;
      const first = points.length > 1 ? points[0] : undefined;
      for (const [destination, cur] of last.outbound) {
        const service = serviceOf(destination, services);
        if (service === undefined) continue;
        const acc = out.get(service) ?? { seconds: 0, total: 0 };
        acc.total += cur.requests;
        if (first) {
          const d = delta(first.outbound.get(destination) ?? emptyCounts(), cur);
          acc.counts = add(acc.counts ?? emptyCounts(), d);
          acc.seconds = Math.max(acc.seconds, (last.t - first.t) / 1000);
        }
        out.set(service, acc);
      }
    }
    return out;
  }

  private window(t: ScrapeTarget): { counts?: Counts; seconds: number; total: number } {
    const points = this.history.get(t)!;
    const last = points[points.length - 1];
    if (!last) return { seconds: 0, total: 0 };
    if (points.length < 2) return { seconds: 0, total: last.counts.requests };
    const first = points[0];
    return {
      counts: delta(first.counts, last.counts),
      seconds: (last.t - first.t) / 1000,
      total: last.counts.requests,
    };
  }
}

/**
 * The service a destination_service label belongs to: "catalog.default" → catalog, and a subset
 * Service named after its parent, "reviews-v2.default" → reviews (the longest match wins).
 */
export function serviceOf(destination: string, services: readonly string[]): string | undefined {
  const name = destination.split(".")[0];
  let best: string | undefined;
  for (const s of services) {
    if ((name === s || name.startsWith(`${s}-`)) && (best === undefined || s.length > best.length)) best = s;
  }
  return best;
}

/** GET http://127.0.0.1:PORT/metrics, as text. */
export function fetchMetrics(port: number, timeoutMs = 1500): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host: "127.0.0.1", port, path: "/metrics", timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        if (res.statusCode !== 200) reject(new Error(`/metrics answered ${res.statusCode}`));
        else resolve(Buffer.concat(chunks).toString("utf8"));
      });
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}
