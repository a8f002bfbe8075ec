// The serving gate on hand-driven timers with scripted probes: an instance joins only when its
// sidecar is ready and its app accepts connections (or passes its health check), leaves when the
// app stops accepting them and comes back with it, and leaves for good when draining. One test
// against a real socket: the default probe is a TCP connect to the app port.

import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { test } from "node:test";
import type { HealthCheck, ProxySnapshot } from "../../model/snapshot.ts";
import { FakeTimers } from "../testing/fake-timers.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { Cell } from "./cell.ts";
import type { Probe, ProbeResult } from "./health-check.ts";
import { admissionProbe, ServingGate } from "./serving.ts";

const up: ProbeResult = { ok: true, result: "success", detail: "connect: ok" };
const down: ProbeResult = { ok: false, result: "error", detail: "connect: connection refused" };

function setup(opts: { check?: HealthCheck } = {}) {
  const timers = new FakeTimers();
  const config = new Cell<ProxySnapshot>();
  const snapshot = buildSnapshot({});
  if (opts.check) snapshot.inbound.healthCheck = opts.check;
  const app = { result: down, probes: [] as (HealthCheck | undefined)[] };
  const reports: [boolean, string][] = [];
  let sidecarReady = false;
  const gate = new ServingGate({
    sidecarReady: () => sidecarReady,
    config,
    report: (serving, detail) => reports.push([serving, detail]),
    timers,
    probeFor: (check): Probe => {
      return async () => {
        app.probes.push(check);
        return app.result;
      };
    },
  });
  return {
    timers,
    gate,
    app,
    reports,
    /** Config in and listeners up. */
    sidecarUp() {
      config.set(snapshot);
      sidecarReady = true;
      gate.poke();
    },
  };
}

test("joins only once the sidecar is ready and the app accepts connections; reports it once", async () => {
  const s = setup();
  s.gate.start();
  await s.timers.advance(5_000);
  assert.equal(s.app.probes.length, 0, "no probe of the app before the sidecar has its config");
  assert.deepEqual(s.reports, []);

  s.sidecarUp();
  await s.timers.advance(0);
  assert.equal(s.app.probes.length, 1, "probed as soon as the sidecar is up");
  await s.timers.advance(10_000);
  assert.deepEqual(s.reports, [], "the app does not listen yet: not serving");
  assert.equal(s.gate.serving, false);
  // Backing off: 100, 200, 400, 800, then every second.
  assert.ok(s.app.probes.length >= 10 && s.app.probes.length <= 16, `${s.app.probes.length} probes in 10 s`);

  s.app.result = up;
  await s.timers.advance(1_000);
  assert.equal(s.gate.serving, true);
  assert.equal(s.reports.length, 1);
  assert.equal(s.reports[0][0], true);
  assert.match(s.reports[0][1], /app on 127\.0\.0\.1:\d+ ready \(connect: ok\)/);
  await s.timers.advance(10_000);
  assert.equal(s.reports.length, 1, "reported once");
});

test("with a health check, joining takes a passing probe of that check; watching is a plain connect", async () => {
  const check: HealthCheck = {
    http: { path: "/healthz", expectedStatuses: [] },
    intervalMs: 5_000,
    timeoutMs: 1_000,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
  };
  const s = setup({ check });
  s.gate.start();
  s.sidecarUp();
  s.app.result = up;
  await s.timers.advance(0);
  assert.equal(s.gate.serving, true);
  assert.deepEqual(s.app.probes, [check], "admitted by the health check's own probe");
  await s.timers.advance(1_000);
  assert.deepEqual(s.app.probes.slice(1), [undefined], "then watched with a TCP connect");
});

test("leaves when the app stops accepting connections (two failed connects), and comes back with it", async () => {
  const s = setup();
  s.gate.start();
  s.app.result = up;
  s.sidecarUp();
  await s.timers.advance(0);
  assert.equal(s.gate.serving, true);

  s.app.result = down;
  await s.timers.advance(1_000);
  assert.equal(s.gate.serving, true, "one failed connect is not enough");
  await s.timers.advance(1_000);
  assert.equal(s.gate.serving, false);
  assert.deepEqual(s.reports.at(-1)?.[0], false);
  assert.match(s.reports.at(-1)![1], /stopped accepting connections \(connect: connection refused\)/);

  s.app.result = up;
  await s.timers.advance(100);
  assert.equal(s.gate.serving, true, "back as soon as the app accepts connections again");
  assert.deepEqual(
    s.reports.map((r) => r[0]),
    [true, false, true],
  );
});

test("leave() reports not serving at once, stops probing, and says whether it was serving", async () => {
  const s = setup();
  s.gate.start();
  s.app.result = up;
  s.sidecarUp();
  await s.timers.advance(0);
  assert.equal(s.gate.leave(), true);
  assert.deepEqual(s.reports.at(-1), [false, "draining"]);
  const probes = s.app.probes.length;
  await s.timers.advance(10_000);
  assert.equal(s.app.probes.length, probes, "no probes after leaving");
  s.gate.poke();
  await s.timers.advance(10_000);
  assert.equal(s.gate.serving, false, "never rejoins");
  assert.equal(s.timers.pending, 0);

  const never = setup();
  never.gate.start();
  never.sidecarUp();
  await never.timers.advance(1_000);
  assert.equal(never.gate.leave(), false, "never served: nobody sends to it, nothing to wait for");
  assert.deepEqual(never.reports, []);
});

test("the default admission probe is a TCP connect to the app port", async (t) => {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  assert.equal((await admissionProbe(undefined, "127.0.0.1", port)()).ok, true);
  server.close();
  await new Promise((r) => server.once("close", r));
  const refused = await admissionProbe(undefined, "127.0.0.1", port)();
  assert.equal(refused.ok, false);
  assert.match(refused.detail, /connection refused/);
});
