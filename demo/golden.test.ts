import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  add,
  delta,
  emptyCounts,
  histogramQuantile,
  inboundCounts,
  outboundCounts,
  signals,
  type Counts,
} from "./golden.ts";
import { parsePrometheusText } from "./prometheus.ts";

const FIXTURE = readFileSync(new URL("./testdata/proxy-metrics.txt", import.meta.url), "utf8");
const buckets = (pairs: [number, number][]) => new Map(pairs);

test("inbound counts sum every inbound series; 5xx are failures; outbound is ignored", () => {
  const c = inboundCounts(parsePrometheusText(FIXTURE));
  assert.equal(c.requests, 100);
  assert.equal(c.failures, 2);
  assert.deepEqual(
    [...c.buckets],
    [
      [0.001, 10],
      [0.005, 92],
      [Infinity, 100],
    ],
  );
});

test("429 (refused by a rate limit) is a failure, other 4xx are not; outbound counts per destination", () => {
  const samples = parsePrometheusText(
    [
      `weft_requests_total{direction="inbound",response_code="200"} 5`,
      `weft_requests_total{direction="inbound",response_code="404"} 2`,
      `weft_requests_total{direction="inbound",response_code="429"} 3`,
      `weft_requests_total{direction="outbound",destination_service="ratings.default",response_code="200"} 7`,
      `weft_requests_total{direction="outbound",destination_service="ratings.default",response_code="503"} 1`,
      `weft_requests_total{direction="outbound",destination_service="catalog.default",response_code="0"} 4`,
    ].join("\n"),
  );
  const inbound = inboundCounts(samples);
  assert.equal(inbound.requests, 10);
  assert.equal(inbound.failures, 3);
  const out = outboundCounts(samples);
  assert.deepEqual([...out.keys()], ["ratings.default", "catalog.default"]);
  assert.equal(out.get("ratings.default")!.requests, 8);
  assert.equal(out.get("ratings.default")!.failures, 1);
  assert.equal(out.get("catalog.default")!.failures, 4, "no response at all is a failure");
});

test("histogram quantile interpolates inside the bucket, like Prometheus", () => {
  const b = buckets([
    [0.001, 10],
    [0.005, 90],
    [0.01, 100],
    [Infinity, 100],
  ]);
  assert.equal(histogramQuantile(0.1, b), 0.001);
  // rank 50 is half-way through the (0.001, 0.005] bucket's 80 requests: 0.001 + 0.004 * 40/80
  assert.ok(Math.abs(histogramQuantile(0.5, b)! - 0.003) < 1e-12);
  assert.ok(Math.abs(histogramQuantile(0.99, b)! - 0.0095) < 1e-12);
  // in +Inf: the highest finite bound
  assert.equal(
    histogramQuantile(
      0.99,
      buckets([
        [0.1, 1],
        [Infinity, 10],
      ]),
    ),
    0.1,
  );
  assert.equal(
    histogramQuantile(
      0.5,
      buckets([
        [0.1, 0],
        [Infinity, 0],
      ]),
    ),
    undefined,
  );
  assert.equal(histogramQuantile(0.5, new Map()), undefined);
});

test("delta between scrapes, and a counter reset counts from zero", () => {
  const a: Counts = {
    requests: 10,
    failures: 1,
    buckets: buckets([
      [0.01, 8],
      [Infinity, 10],
    ]),
  };
  const b: Counts = {
    requests: 30,
    failures: 2,
    buckets: buckets([
      [0.01, 25],
      [Infinity, 30],
    ]),
  };
  assert.deepEqual(delta(a, b), {
    requests: 20,
    failures: 1,
    buckets: buckets([
      [0.01, 17],
      [Infinity, 20],
    ]),
  });
  const restarted: Counts = {
    requests: 4,
    failures: 0,
    buckets: buckets([
      [0.01, 4],
      [Infinity, 4],
    ]),
  };
  assert.deepEqual(delta(b, restarted), restarted);
});

test("add merges instances bucket by bucket", () => {
  const a: Counts = {
    requests: 2,
    failures: 1,
    buckets: buckets([
      [0.01, 1],
      [Infinity, 2],
    ]),
  };
  const b: Counts = {
    requests: 3,
    failures: 0,
    buckets: buckets([
      [0.01, 3],
      [Infinity, 3],
    ]),
  };
  assert.deepEqual(add(add(emptyCounts(), a), b), {
    requests: 5,
    failures: 1,
    buckets: buckets([
      [0.01, 4],
      [Infinity, 5],
    ]),
  });
});

test("signals over a window", () => {
  const w: Counts = {
    requests: 40,
    failures: 2,
    buckets: buckets([
      [0.005, 20],
      [0.01, 40],
      [Infinity, 40],
    ]),
  };
  const s = signals(w, 2, 1000);
  assert.equal(s.rps, 20);
  assert.equal(s.success, 0.95);
  assert.equal(s.p50, 0.005);
  assert.equal(s.total, 1000);
  assert.deepEqual(signals(emptyCounts(), 2, 7), { total: 7, rps: 0 });
  assert.deepEqual(signals(undefined, 0, 7), { total: 7 });
});
