import assert from "node:assert/strict";
import { test } from "node:test";
import { MetricsScraper, serviceOf, type ScrapeTarget } from "./scraper.ts";

/** Prometheus text for `n` inbound requests (`failed` of them 503), all faster than `le` seconds. */
function text(n: number, failed = 0, le = 0.005): string {
  const line = (code: string, count: number) =>
    [
      `weft_requests_total{direction="inbound",route="inbound",response_code="${code}"} ${count}`,
      `weft_request_duration_seconds_bucket{direction="inbound",route="inbound",response_code="${code}",le="${le}"} ${count}`,
      `weft_request_duration_seconds_bucket{direction="inbound",route="inbound",response_code="${code}",le="+Inf"} ${count}`,
    ].join("\n");
  return `${line("200", n - failed)}\n${line("503", failed)}\n# an outbound series must not count\nweft_requests_total{direction="outbound",response_code="200"} 999\n`;
}

const targets: ScrapeTarget[] = [
  { service: "catalog", version: "v1", adminPort: 1 },
  { service: "reviews", version: "v1", adminPort: 2 },
  { service: "reviews", version: "v2", adminPort: 3 },
];

test("rows per service, per-version rows when a service has several, rates over the window", async () => {
  const now: Record<number, string> = { 1: text(0), 2: text(0), 3: text(0) };
  const scraper = new MetricsScraper(targets, { fetchText: async (port) => now[port], windowMs: 10_000 });
  await scraper.scrape(0);
  let rows = scraper.rows();
  assert.deepEqual(
    rows.map((r) => [r.key, r.sub]),
    [
      ["catalog", false],
      ["reviews", false],
      ["reviews/v1", true],
      ["reviews/v2", true],
    ],
  );
  assert.equal(rows[0].signals.rps, undefined, "one scrape: no rate yet");

  Object.assign(now, { 1: text(40), 2: text(30, 3, 0.001), 3: text(10, 0, 0.01) });
  await scraper.scrape(2000);
  rows = scraper.rows();
  const byKey = Object.fromEntries(rows.map((r) => [r.key, r.signals]));
  assert.equal(byKey.catalog.rps, 20);
  assert.equal(byKey.catalog.success, 1);
  assert.equal(byKey.reviews.rps, 20);
  assert.equal(byKey.reviews.total, 40);
  assert.equal(byKey.reviews.success, 1 - 3 / 40);
  assert.equal(byKey["reviews/v1"].rps, 15);
  assert.equal(byKey["reviews/v2"].rps, 5);
  assert.equal(byKey["reviews/v2"].success, 1);
  assert.ok(byKey["reviews/v2"].p99! > 0.001 && byKey["reviews/v2"].p99! <= 0.01);
  assert.ok(byKey["reviews/v1"].p50! <= 0.001);
});

test("the window slides: old scrapes drop out", async () => {
  let n = 0;
  const scraper = new MetricsScraper([targets[0]], { fetchText: async () => text(n), windowMs: 4000 });
  for (let t = 0; t <= 10_000; t += 2000) {
    n = t < 6000 ? t / 100 : 60; // 20 req/s until t=6 s, then nothing
    await scraper.scrape(t);
  }
  const [row] = scraper.rows();
  assert.equal(row.signals.rps, 0, "the last 4 s had no requests");
  assert.equal(row.signals.total, 60);
});

test("a failed scrape is reported on its row and keeps the previous data", async () => {
  let fail = false;
  const scraper = new MetricsScraper([targets[0]], {
    fetchText: async () => {
      if (fail) throw new Error("connect ECONNREFUSED");
      return text(10);
    },
  });
  await scraper.scrape(0);
  fail = true;
  await scraper.scrape(2000);
  const [row] = scraper.rows();
  assert.match(row.error!, /admin :1: connect ECONNREFUSED/);
  assert.equal(row.signals.total, 10);
});

/** Outbound series of one sidecar: destination_service → [requests, of which failed with `code`]. */
function outbound(to: Record<string, [number, number]>, code = "503"): string {
  return Object.entries(to)
    .flatMap(([dest, [n, failed]]) => [
      `weft_requests_total{direction="outbound",destination_service="${dest}",route="default",response_code="200"} ${n - failed}`,
      `weft_requests_total{direction="outbound",destination_service="${dest}",route="default",response_code="${code}"} ${failed}`,
    ])
    .join("\n");
}

test("callers' view: each service row adds its callers' outbound requests, subsets included; hidden targets have no row", async () => {
  const t: ScrapeTarget[] = [
    { service: "storefront", version: "v1", adminPort: 1 },
    { service: "reviews", version: "v1", adminPort: 2 },
    { service: "reviews", version: "v2", adminPort: 3 },
    { service: "traffic", version: "v1", adminPort: 4, hidden: true },
  ];
  const now: Record<number, string> = {
    1: text(0) + outbound({ "reviews-v1.default": [0, 0], "reviews-v2.default": [0, 0] }),
    2: text(0),
    3: text(0),
    4: outbound({ "storefront.default": [0, 0] }),
  };
  const scraper = new MetricsScraper(t, { fetchText: async (port) => now[port] });
  await scraper.scrape(0);
  Object.assign(now, {
    // The storefront served 40, all fine as far as its own sidecar knows...
    1:
      text(40) +
      // ...and called reviews 40 times: v1 answered 20, v2 20 of which 2 failed; catalog is no row.
      outbound({ "reviews-v1.default": [20, 0], "reviews-v2.default": [20, 2], "catalog.default": [40, 40] }),
    2: text(20),
    3: text(20, 2),
    // The traffic's sidecar saw 10 of its 40 storefront calls fail: refused by a rate limit (429).
    4: outbound({ "storefront.default": [40, 10] }, "429"),
  });
  await scraper.scrape(2000);
  const rows = scraper.rows();
  assert.deepEqual(
    rows.map((r) => r.key),
    ["storefront", "reviews", "reviews/v1", "reviews/v2"],
    "no row for the hidden traffic target",
  );
  const byKey = Object.fromEntries(rows.map((r) => [r.key, r]));
  assert.equal(byKey.storefront.signals.success, 1);
  assert.equal(byKey.storefront.callers!.success, 0.75, "429s count as failures");
  assert.equal(byKey.storefront.callers!.rps, 20);
  assert.equal(byKey.reviews.callers!.success, 1 - 2 / 40);
  assert.equal(byKey.reviews.callers!.total, 40);
  assert.equal(byKey["reviews/v1"].callers, undefined, "version rows have no callers' view");
});

test("serviceOf maps a destination to its service, subsets by name, the longest match first", () => {
  assert.equal(serviceOf("catalog.default", ["catalog", "reviews"]), "catalog");
  assert.equal(serviceOf("reviews-v2.default", ["catalog", "reviews"]), "reviews");
  assert.equal(serviceOf("reviews-v2.default", ["reviews", "reviews-v2"]), "reviews-v2");
  assert.equal(serviceOf("reviewsx.default", ["reviews"]), undefined);
  assert.equal(serviceOf("unknown", ["reviews"]), undefined);
});
