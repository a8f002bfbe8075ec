// What a sidecar keeps per destination follows its config: when services leave the config, their
// metric series (and the memory behind them) go too, and a destination that never saw a request or
// an overflow costs no series at all. Real listener, real requests, config changed through its Cell.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { MetricFamily } from "../metrics/families.ts";
import { startApp } from "../testing/apps.ts";
import { viaProxy } from "../testing/client.ts";
import { startOutbound } from "../testing/harness.ts";
import { buildSnapshot, type ServiceSpec } from "../testing/snapshots.ts";

const seriesCount = (families: readonly MetricFamily<never>[]) => families.reduce((n, f) => n + f.size, 0);

test("metric series of destinations that left the config are dropped; unused destinations have none", async (t) => {
  const app = await startApp("svc", (_req, res) => res.end("ok"));
  t.after(() => app.close());
  const services = (n: number): ServiceSpec[] =>
    Array.from({ length: n }, (_, i) => ({ name: `svc-${i}`, endpoints: [{ port: app.port }] }));
  const p = await startOutbound(buildSnapshot({ services: [] }));
  t.after(() => p.close());
  const families = p.metrics.registry.families as unknown as MetricFamily<never>[];
  const empty = seriesCount(families);

  // 500 destinations, none used yet: compiling them binds no series.
  p.config.set(buildSnapshot({ services: services(500) }));
  assert.equal(seriesCount(families), empty, "no series for destinations without traffic");

  // Traffic to some of them creates their series.
  for (let i = 0; i < 5; i++) assert.equal((await viaProxy(p.port, `http://svc-${i}/`)).status, 200);
  const used = seriesCount(families);
  assert.ok(used > empty);
  assert.match(p.metrics.render(), /destination_service="svc-4\.default"/);

  // The config shrinks to one of them: the others' series go, svc-0's stay.
  p.config.set(buildSnapshot({ services: services(1) }));
  const text = p.metrics.render();
  assert.doesNotMatch(text, /svc-[1-9]\.default/);
  assert.match(text, /destination_service="svc-0\.default"/);
  p.config.set(buildSnapshot({ services: [] }));
  assert.doesNotMatch(p.metrics.render(), /svc-\d+\.default/);
  // Only destination-independent series remain (connections, config updates).
  assert.ok(seriesCount(families) <= used - 5 * 2, `${seriesCount(families)} series left of ${used}`);
});
