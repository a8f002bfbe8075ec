import assert from "node:assert/strict";
import { test } from "node:test";
import type { SummaryRow } from "./scraper.ts";
import { formatLatency, formatSuccess, formatUptime, renderSummary, renderTable, Screen } from "./summary.ts";

const rows: SummaryRow[] = [
  {
    key: "storefront",
    name: "storefront",
    sub: false,
    signals: { rps: 20, success: 1, p50: 0.0042, p99: 0.0185, total: 840 },
    callers: { rps: 20, success: 0.75, total: 840 },
  },
  {
    key: "reviews",
    name: "reviews",
    sub: false,
    signals: { rps: 19.96, success: 0.995, p50: 0.002, p99: 0.009, total: 838 },
    callers: { total: 838 },
  },
  { key: "reviews/v1", name: "v1", sub: true, signals: { rps: 0, total: 0 } },
  { key: "ratings", name: "ratings", sub: false, signals: { total: 0 }, error: "admin :4: timed out" },
];

test("formats", () => {
  assert.equal(formatSuccess(1), "100%");
  assert.equal(formatSuccess(0.9999), "99.9%", "never rounds up to 100%");
  assert.equal(formatSuccess(undefined), "-");
  assert.equal(formatLatency(0.00042), "0.4ms");
  assert.equal(formatLatency(0.0185), "19ms");
  assert.equal(formatLatency(2.5), "2.50s");
  assert.equal(formatUptime(65_000), "1:05");
});

test("the table aligns columns and indents versions; callers' success only on service rows", () => {
  const lines = renderTable(rows);
  assert.equal(lines[0].replace(/\s+/g, " "), "SERVICE REQ/S SUCCESS CALLERS OK P50 P99 REQUESTS");
  assert.equal(lines[1].replace(/\s+/g, " "), "storefront 20.0 100% 75.0% 4.2ms 19ms 840");
  assert.equal(lines[2].replace(/\s+/g, " "), "reviews 20.0 99.5% - 2.0ms 9.0ms 838");
  assert.equal(lines[3].replace(/\s+/g, " "), " v1 0.0 - - - 0", "no CALLERS OK on a version row");
  assert.match(lines[4], /^ratings\s+-\s+-\s+-\s+-\s+-\s+0 {2}! admin :4: timed out$/);
  const width = lines[0].length;
  for (const l of lines.slice(1, 4)) assert.equal(l.length, width);
});

test("the footer says what to try, with the CLI as the user can type it", () => {
  const { table, footer } = renderSummary({
    rows,
    uptimeMs: 42_000,
    controlPlane: "https://127.0.0.1:15000",
    cli: "npx weft",
    demoDir: "demo",
    docsFile: "docs/demo.md",
    logsDir: ".weft/demo-logs",
    reviewsAdminPort: 40001,
    trafficOutboundPort: 40002,
  });
  assert.match(table, /up 0:42/);
  assert.match(footer, /npx weft apply -f demo\/try\/canary-1-90-10\.yaml +# canary: 10% of reviews to v2/);
  assert.match(footer, /npx weft demo chaos reviews-v3 fail=0\.3 +# make v3 fail 30% of requests/);
  assert.match(footer, /ls demo\/try +# more: mirroring, faults, retries/);
  assert.match(footer, /the walk-through is docs\/demo\.md/);
  assert.match(footer, /CALLERS OK: success \(no 5xx or 429\) as the callers' sidecars saw it/);
  assert.match(footer, /npx weft get workloads/);
  assert.match(footer, /curl -s http:\/\/127\.0\.0\.1:40001\/metrics/);
  assert.match(footer, /logs in \.weft\/demo-logs\//);
});

function fakeOut(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let buf = "";
  const out = { isTTY, write: (s: string) => ((buf += s), true) } as unknown as NodeJS.WriteStream;
  return { out, text: () => buf };
}

test("a terminal gets frames redrawn in place; a pipe gets plain blocks, the footer once", () => {
  const tty = fakeOut(true);
  const s1 = new Screen(tty.out);
  s1.draw({ table: "T1", footer: "F" });
  s1.draw({ table: "T2", footer: "F" });
  assert.ok(tty.text().startsWith("\x1b[H\x1b[2J"), "clears the screen first");
  assert.equal(tty.text().split("\x1b[2J").length, 2, "clears only once, then homes the cursor");
  assert.ok(tty.text().includes("\x1b[HT2"), "second frame drawn from the top");

  const pipe = fakeOut(false);
  const s2 = new Screen(pipe.out);
  s2.draw({ table: "T1", footer: "F" });
  s2.draw({ table: "T2", footer: "F" });
  assert.equal(pipe.text(), "T1\n\nF\n\nT2\n\n");
  assert.ok(!pipe.text().includes("\x1b"));
});
