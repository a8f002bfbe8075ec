// Active health checks of the local app: thresholds and scheduling on hand-driven timers, the HTTP
// and TCP probes against real sockets, and AppHealth following the snapshot (start, restart, stop,
// what is reported and counted).

import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { test } from "node:test";
import type { HealthCheck, ProxySnapshot } from "../../model/snapshot.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { metricValue } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { FakeTimers, settle } from "../testing/fake-timers.ts";
import { Cell } from "./cell.ts";
import {
  AppHealth,
  HealthChecker,
  httpProbe,
  isExpectedStatus,
  tcpProbe,
  type Probe,
  type ProbeResult,
} from "./health-check.ts";

const ok = (detail = "GET /healthz: 200"): ProbeResult => ({ ok: true, result: "success", detail });
const bad = (detail = "GET /healthz: 500"): ProbeResult => ({ ok: false, result: "failure", detail });

/** A probe that answers from a script (the last answer repeats) and counts its calls. */
function scripted(answers: ProbeResult[]): Probe & { calls: number } {
  const p = Object.assign(
    async () => {
      const r = answers[Math.min(p.calls, answers.length - 1)];
      p.calls++;
      return r;
    },
    { calls: 0 },
  );
  return p;
}

test("state changes only after the thresholds of consecutive results; starts healthy", async () => {
  const timers = new FakeTimers();
  const changes: [boolean, string][] = [];
  const probe = scripted([bad("a"), ok(), bad("b"), bad("c"), bad("d"), ok(), bad("e"), ok(), ok(), ok()]);
  const c = new HealthChecker({
    probe,
    intervalMs: 100,
    healthyThreshold: 3,
    unhealthyThreshold: 3,
    timers,
    onChange: (h, d) => changes.push([h, d]),
  });
  c.start();
  assert.equal(c.healthy, true, "healthy before any probe");
  await timers.advance(99);
  assert.equal(probe.calls, 0, "the first probe waits one interval");
  await timers.advance(1);
  assert.equal(probe.calls, 1);
  // bad, ok: the success resets the failure count.
  await timers.advance(100);
  assert.equal(c.healthy, true);
  // bad, bad: two in a row is not three.
  await timers.advance(200);
  assert.equal(c.healthy, true);
  assert.deepEqual(changes, []);
  await timers.advance(100); // third consecutive failure
  assert.equal(c.healthy, false);
  assert.deepEqual(changes, [[false, "d"]]);
  // ok, bad, ok, ok: interrupted successes start over; three in a row turn it healthy.
  await timers.advance(300);
  assert.equal(c.healthy, false);
  await timers.advance(200);
  assert.equal(c.healthy, true);
  assert.deepEqual(changes, [
    [false, "d"],
    [true, "GET /healthz: 200"],
  ]);
  assert.equal(probe.calls, 10);
  c.stop();
});

test("one probe at a time: the next is scheduled an interval after a slow one finishes; stop drops a late result", async () => {
  const timers = new FakeTimers();
  let release: (r: ProbeResult) => void = () => {};
  let calls = 0;
  const probe: Probe = () => {
    calls++;
    return new Promise((r) => (release = r));
  };
  const changes: boolean[] = [];
  const c = new HealthChecker({
    probe,
    intervalMs: 50,
    healthyThreshold: 1,
    unhealthyThreshold: 1,
    timers,
    onChange: (h) => changes.push(h),
  });
  c.start();
  await timers.advance(50);
  assert.equal(calls, 1);
  await timers.advance(500);
  assert.equal(calls, 1, "no second probe while the first is in flight");
  assert.equal(timers.pending, 0);
  release(bad());
  await settle();
  assert.equal(c.healthy, false);
  await timers.advance(50);
  assert.equal(calls, 2);
  c.stop();
  release(ok());
  await settle();
  assert.equal(c.healthy, false, "a result that arrives after stop is ignored");
  assert.equal(timers.pending, 0, "nothing scheduled after stop");
  assert.deepEqual(changes, [false]);
});

test("a probe that throws counts as a failure", async () => {
  const timers = new FakeTimers();
  const results: ProbeResult[] = [];
  const c = new HealthChecker({
    probe: async () => {
      throw new Error("boom");
    },
    intervalMs: 10,
    healthyThreshold: 1,
    unhealthyThreshold: 1,
    timers,
    onResult: (r) => results.push(r),
  });
  c.start();
  await timers.advance(10);
  assert.equal(c.healthy, false);
  assert.deepEqual(results, [{ ok: false, result: "error", detail: "boom" }]);
  c.stop();
});

test("expected statuses: the list when given, 200–399 when empty", () => {
  assert.ok(isExpectedStatus(200, []));
  assert.ok(isExpectedStatus(302, []));
  assert.ok(isExpectedStatus(399, []));
  assert.ok(!isExpectedStatus(400, []));
  assert.ok(!isExpectedStatus(199, []));
  assert.ok(isExpectedStatus(204, [204]));
  assert.ok(!isExpectedStatus(200, [204]));
});

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

test("HTTP probe: status against the expected list, timeouts and refused connections", async (t) => {
  const seen: { url?: string; ua?: string }[] = [];
  let status = 200;
  const server = createServer((req, res) => {
    seen.push({ url: req.url, ua: req.headers["user-agent"] });
    if (req.url === "/hang") return; // never answers
    res.statusCode = status;
    res.end("body the probe drains");
  });
  const port = await listen(server);
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });

  assert.deepEqual(await httpProbe("127.0.0.1", port, "/healthz", [], 1000)(), {
    ok: true,
    result: "success",
    detail: "GET /healthz: 200",
  });
  assert.deepEqual(seen[0], { url: "/healthz", ua: "weft-health-check" });
  status = 500;
  assert.deepEqual(await httpProbe("127.0.0.1", port, "/healthz", [], 1000)(), {
    ok: false,
    result: "failure",
    detail: "GET /healthz: 500",
  });
  status = 200;
  const strict = await httpProbe("127.0.0.1", port, "/healthz", [204], 1000)();
  assert.equal(strict.result, "failure", "200 is not in [204]");

  const started = Date.now();
  const hung = await httpProbe("127.0.0.1", port, "/hang", [], 100)();
  assert.deepEqual(hung, { ok: false, result: "timeout", detail: "GET /hang: no answer within 100 ms" });
  assert.ok(Date.now() - started < 5000, "the timeout bounds the probe");

  const refused = await httpProbe("127.0.0.1", await closedPort(), "/healthz", [], 1000)();
  assert.deepEqual(refused, { ok: false, result: "error", detail: "GET /healthz: connection refused" });
});

test("TCP probe: a listening port is healthy, a closed one is not", async (t) => {
  const server = createTcpServer((s) => s.destroy());
  const port = await listen(server);
  t.after(() => server.close());
  assert.deepEqual(await tcpProbe("127.0.0.1", port, 1000)(), {
    ok: true,
    result: "success",
    detail: "connect: ok",
  });
  const refused = await tcpProbe("127.0.0.1", await closedPort(), 1000)();
  assert.deepEqual(refused, { ok: false, result: "error", detail: "connect: connection refused" });
});

const CHECK: HealthCheck = {
  http: { path: "/healthz", expectedStatuses: [] },
  intervalMs: 100,
  timeoutMs: 50,
  healthyThreshold: 2,
  unhealthyThreshold: 1,
};

function snapshotWith(check: HealthCheck | undefined, version: string): ProxySnapshot {
  const s = buildSnapshot({ appPort: 8080, version });
  if (check) s.inbound.healthCheck = check;
  return s;
}

function harness() {
  const timers = new FakeTimers();
  const config = new Cell<ProxySnapshot>();
  const metrics = new ProxyMetrics();
  const reports: [boolean, string][] = [];
  const probes: { check: HealthCheck; port: number; probe: ReturnType<typeof scripted> }[] = [];
  let answers: ProbeResult[] = [ok()];
  const health = new AppHealth({
    config,
    metrics,
    timers,
    report: (h, d) => reports.push([h, d]),
    probeFor: (check, _address, port) => {
      const probe = scripted(answers);
      probes.push({ check, port, probe });
      return probe;
    },
  });
  const value = (name: string, labels: Record<string, string> = {}) =>
    metricValue(metrics.render(), name, labels);
  return {
    timers,
    config,
    health,
    reports,
    probes,
    value,
    answer: (a: ProbeResult[]) => (answers = a),
  };
}

test("AppHealth: no check, nothing runs; a check in the snapshot starts probing the app's port and reports changes", async (t) => {
  const h = harness();
  t.after(() => h.health.stop());
  h.config.set(snapshotWith(undefined, "v1"));
  await h.timers.advance(1000);
  assert.equal(h.probes.length, 0);
  assert.equal(h.value("weft_app_healthy"), undefined, "no gauge without a check");

  h.answer([ok(), bad("GET /healthz: 503"), ok(), ok()]);
  h.config.set(snapshotWith(CHECK, "v2"));
  assert.equal(h.probes.length, 1);
  assert.equal(h.probes[0].port, 8080);
  assert.equal(h.value("weft_app_healthy"), 1, "healthy from the start");
  await h.timers.advance(100);
  assert.deepEqual(h.reports, [], "healthy → healthy is not a change");
  await h.timers.advance(100);
  assert.deepEqual(h.reports, [[false, "GET /healthz: 503"]]);
  assert.equal(h.value("weft_app_healthy"), 0);
  await h.timers.advance(100);
  assert.equal(h.reports.length, 1, "one success is below healthyThreshold 2");
  await h.timers.advance(100);
  assert.deepEqual(h.reports.at(-1), [true, "GET /healthz: 200"]);
  assert.equal(h.value("weft_app_healthy"), 1);
  assert.equal(h.value("weft_health_checks_total", { result: "success" }), 3);
  assert.equal(h.value("weft_health_checks_total", { result: "failure" }), 1);
});

test("AppHealth: an unrelated config change keeps the check running; changed settings restart it in the state it had", async (t) => {
  const h = harness();
  t.after(() => h.health.stop());
  h.answer([bad()]);
  h.config.set(snapshotWith(CHECK, "v1"));
  await h.timers.advance(100);
  assert.equal(h.health.healthy, false);
  assert.equal(h.reports.length, 1);

  h.config.set(snapshotWith({ ...CHECK }, "v2"));
  assert.equal(h.probes.length, 1, "same settings: not restarted");

  // A new interval: a new checker, still unhealthy until healthyThreshold successes — not readmitted.
  h.answer([ok()]);
  h.config.set(snapshotWith({ ...CHECK, intervalMs: 300 }, "v3"));
  assert.equal(h.probes.length, 2);
  assert.equal(h.health.healthy, false);
  await h.timers.advance(300);
  assert.equal(h.probes[0].probe.calls, 1, "the old checker stopped");
  assert.equal(h.health.healthy, false);
  assert.deepEqual(h.reports, [[false, "GET /healthz: 500"]]);
  await h.timers.advance(300);
  assert.equal(h.health.healthy, true);
  assert.deepEqual(h.reports.at(-1), [true, "GET /healthz: 200"]);

  // A new app port is a new target too.
  const moved = snapshotWith({ ...CHECK, intervalMs: 300 }, "v4");
  moved.inbound.appPort = 9090;
  h.config.set(moved);
  assert.equal(h.probes.at(-1)?.port, 9090);
});

test("AppHealth: removing the check stops it and clears an Unhealthy report", async (t) => {
  const h = harness();
  t.after(() => h.health.stop());
  h.answer([bad()]);
  h.config.set(snapshotWith(CHECK, "v1"));
  await h.timers.advance(100);
  assert.deepEqual(h.reports, [[false, "GET /healthz: 500"]]);
  h.config.set(snapshotWith(undefined, "v2"));
  assert.deepEqual(h.reports.at(-1), [true, "health check removed"]);
  assert.equal(h.value("weft_app_healthy"), 1);
  const calls = h.probes[0].probe.calls;
  await h.timers.advance(1000);
  assert.equal(h.probes[0].probe.calls, calls, "no probes after removal");
  assert.equal(h.timers.pending, 0);

  // Removing a check that never reported anything tells the control plane nothing.
  h.answer([ok()]);
  h.config.set(snapshotWith(CHECK, "v3"));
  h.config.set(snapshotWith(undefined, "v4"));
  assert.equal(h.reports.length, 2);
});
