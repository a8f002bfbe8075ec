import { test } from "node:test";
import assert from "node:assert/strict";
import { renderPrometheus } from "./exposition.ts";
import { MetricsRegistry } from "./families.ts";
import { ProxyMetrics, StatsByCode } from "./registry.ts";

test("counters, gauges and histograms in Prometheus text format, with escaped label values", () => {
  const r = new MetricsRegistry();
  const c = r.counter("t_total", "A counter.\nSecond line", ["a"]);
  c.series('x"y\\z\n').inc(2);
  const h = r.histogram("t_seconds", "A histogram.", ["a"], [0.1, 1]);
  const s = h.series("q");
  s.observe(0.05);
  s.observe(0.1);
  s.observe(0.5);
  s.observe(5);
  r.gauge("t_active", "A gauge.", []).series().inc(3);
  assert.equal(
    renderPrometheus(r),
    [
      "# HELP t_total A counter.\\nSecond line",
      "# TYPE t_total counter",
      't_total{a="x\\"y\\\\z\\n"} 2',
      "# HELP t_seconds A histogram.",
      "# TYPE t_seconds histogram",
      't_seconds_bucket{a="q",le="0.1"} 2',
      't_seconds_bucket{a="q",le="1"} 3',
      't_seconds_bucket{a="q",le="+Inf"} 4',
      't_seconds_sum{a="q"} 5.65',
      't_seconds_count{a="q"} 4',
      "# HELP t_active A gauge.",
      "# TYPE t_active gauge",
      "t_active 3",
      "",
    ].join("\n"),
  );
});

test("series handles are shared per label set; the wrong number of labels is a bug", () => {
  const m = new ProxyMetrics();
  const a = new StatsByCode(m, "outbound", "web.default", "reviews.default", "r1");
  const b = new StatsByCode(m, "outbound", "web.default", "reviews.default", "r1");
  a.get(200, undefined).record(0.001);
  b.get(200, undefined).record(0.002);
  a.get(200, "0").record(0.003);
  assert.equal(a.get(200, undefined), a.get(200, undefined), "cached per code");
  const text = m.render();
  assert.match(
    text,
    /^weft_requests_total\{direction="outbound",source_service="web.default",destination_service="reviews.default",route="r1",response_code="200",grpc_status=""\} 2$/m,
  );
  assert.match(text, /^weft_requests_total\{[^}]*grpc_status="0"\} 1$/m);
  assert.match(
    text,
    /^weft_request_duration_seconds_count\{[^}]*route="r1",response_code="200",grpc_status=""\} 2$/m,
  );
  assert.throws(() => m.localReplies.series("outbound"), /expected 2 label values/);
});
