import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ParseError, parsePrometheusText, sumSamples } from "./prometheus.ts";

// As a weft proxy's admin /metrics renders it (src/proxy/metrics/exposition.ts).
const FIXTURE = readFileSync(new URL("./testdata/proxy-metrics.txt", import.meta.url), "utf8");

test("parses samples with labels, skipping comments", () => {
  const samples = parsePrometheusText(FIXTURE);
  assert.equal(samples.length, 12);
  assert.deepEqual(samples[0], {
    name: "weft_requests_total",
    labels: {
      direction: "inbound",
      source_service: "storefront",
      destination_service: "reviews",
      route: "inbound",
      response_code: "200",
      grpc_status: "",
    },
    value: 98,
  });
  assert.equal(samples.at(-1)!.name, "weft_downstream_connections_active");
  assert.equal(sumSamples(samples, "weft_requests_total", { direction: "inbound" }), 100);
  assert.equal(sumSamples(samples, "weft_requests_total"), 150);
});

test("handles escapes, special values, timestamps, no labels", () => {
  const samples = parsePrometheusText(
    [
      'm{a="say \\"hi\\"",b="back\\\\slash",c="two\\nlines"} 1 1700000000000',
      "plain 2.5e3",
      "n NaN",
      'i{le="+Inf"} +Inf',
      "neg -Inf",
      "empty{} 0",
      "",
    ].join("\n"),
  );
  assert.deepEqual(samples[0].labels, { a: 'say "hi"', b: "back\\slash", c: "two\nlines" });
  assert.equal(samples[0].value, 1);
  assert.equal(samples[1].value, 2500);
  assert.ok(Number.isNaN(samples[2].value));
  assert.equal(samples[3].value, Infinity);
  assert.equal(samples[4].value, -Infinity);
  assert.deepEqual(samples[5].labels, {});
});

test("malformed lines throw with the line number", () => {
  for (const bad of ['m{a="x"', "m{a=x} 1", "m abc", 'm{1a="x"} 1', '{a="x"} 1', "m 1 2 3"]) {
    assert.throws(
      () => parsePrometheusText(`ok 1\n${bad}`),
      (err: unknown) => err instanceof ParseError && err.line === 2,
      bad,
    );
  }
});
