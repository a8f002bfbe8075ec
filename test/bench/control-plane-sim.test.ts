// The control-plane scale simulator (bench/control-plane/), kept working by the suite: a real
// `weft control-plane` process and 20 simulated proxies in this process (the proxy's own certificate,
// config-stream client and on-demand subscriptions), run through every step of `npm run
// bench:control-plane`. With the whole mesh every proxy must ACK its first snapshot and both changes
// (an HTTPRoute, a Workload joining); on demand (the default) and scoped by --reach, only the six
// proxies that call service 0 are affected, and all of them ACK. Then half the mesh goes, and the
// control plane says (GET /metrics) it holds half as much.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { Fleet } from "../../bench/control-plane/fleet.ts";
import { callsOf, serviceCount, serviceName, type Scoping } from "../../bench/control-plane/mesh-shape.ts";
import { runScenario } from "../../bench/control-plane/scenario.ts";
import { WeftMesh } from "../../bench/lib/weft.ts";

const noTaskset = spawnSync("taskset", ["--version"]).error ? "taskset is not installed" : false;
const N = 20;

async function simulate(t: TestContext, scoping: Scoping) {
  const dir = mkdtempSync(join(tmpdir(), "weft-cpsim-test-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const mesh = await WeftMesh.start(dir, 0);
  t.after(() => mesh.stop());
  const fleet = new Fleet();
  t.after(() => fleet.stop());
  const result = await runScenario({
    mesh,
    proxies: N,
    scoping,
    timeoutS: 30,
    fleets: [fleet],
    log: () => {},
    settleMs: 300,
    idleMs: 0,
  });
  return { result, fleet };
}

// Two control planes side by side: each run mostly waits on its own processes.
describe("the control-plane simulator", { concurrency: 2, skip: noTaskset }, () => {
  test("20 simulated proxies with the whole mesh: all connect, and both changes reach every one", async (t) => {
    const { result: r, fleet } = await simulate(t, "full");
    assert.deepEqual(
      { ...r.connect, ms: 0 },
      {
        finished: true,
        ms: 0,
        certs: N,
        acked: N,
        ready: N,
        failed: 0,
        firstFailure: undefined,
        discovery: undefined,
      },
    );
    // Each proxy holds a certificate of its own service and runs a snapshot naming every service:
    // all 10 for the proxies that left in the shrink step, the 5 left for those that stayed.
    for (const p of fleet.proxies) {
      const s = p.current();
      assert.ok(s, `proxy ${p.spec.index} runs a snapshot`);
      assert.equal(s.proxy.service, p.spec.service);
      const stayed = p.spec.index < N / 2;
      assert.equal(Object.keys(s.outbound).length, stayed ? serviceCount(N) / 2 : serviceCount(N));
    }
    assert.equal(r.snapshotBytes.proxies, N);
    assert.ok(r.snapshotBytes.p50 > 1000, `snapshot p50 ${r.snapshotBytes.p50} bytes`);
    for (const change of [r.route, r.join]) {
      assert.equal(change.error, undefined);
      assert.equal(change.finished, true);
      assert.equal(change.affected, N);
      assert.equal(change.reached, N);
      assert.ok(change.p50! > 0 && change.p50! <= change.p99! && change.p99! <= change.max!);
    }
    assert.deepEqual(r.errors, {});
    assert.equal(r.startRetries, 0);
    assert.ok(r.cp.cpuS > 0 && r.cp.rssPeakMb > 0);
    // Shrink: services 5–9 and their 10 proxies go; the control plane reports the smaller mesh and
    // fewer cache entries (each reading from its GET /metrics).
    const s = r.shrink;
    assert.equal(s.error, undefined);
    assert.equal(s.finished, true);
    assert.deepEqual([s.servicesRemoved, s.proxiesRemoved], [5, 10]);
    assert.deepEqual([s.before?.connected, s.before?.services], [N, 10]);
    assert.deepEqual([s.after?.connected, s.after?.services], [10, 5]);
    assert.ok(s.after!.cacheEntries < s.before!.cacheEntries, JSON.stringify(s));
    assert.ok(s.before!.heapUsedMb > 0 && s.after!.rssMb > 0);
  });

  test("on demand, each proxy's first calls subscribe and get their services; a change reaches only their callers", async (t) => {
    const { result: r, fleet } = await simulate(t, "on-demand");
    assert.equal(r.connect.finished, true, JSON.stringify(r.connect));
    assert.equal(r.connect.ready, N);
    // Every proxy's app called 3 services, and each first call got its service's config.
    assert.equal(r.connect.discovery?.calls, 3 * N);
    assert.equal(r.connect.discovery?.missed, 0);
    for (const change of [r.route, r.join]) {
      assert.equal(change.finished, true);
      assert.equal(change.affected, 6);
      assert.equal(change.reached, 6);
    }
    // What it called, and nothing else: once half the mesh went, what is gone is named unresolved.
    const services = serviceCount(N);
    for (const p of fleet.proxies.filter((x) => x.spec.index < N / 2)) {
      const s = p.current()!;
      const held = [...Object.keys(s.outbound).map((k) => k.split(".")[0]), ...(s.unresolved ?? [])];
      assert.deepEqual(held.sort(), callsOf(p.spec.index, services).sort(), `proxy ${p.spec.index}`);
    }
  });

  test("scoped by --reach, a change on service 0 affects only the proxies that call it", async (t) => {
    const { result: r, fleet } = await simulate(t, "reach");
    assert.equal(r.connect.finished, true);
    const callers = fleet.proxies.filter((p) =>
      callsOf(p.spec.index, serviceCount(N)).includes(serviceName(0)),
    );
    assert.equal(callers.length, 6);
    for (const change of [r.route, r.join]) {
      assert.equal(change.finished, true);
      assert.equal(change.affected, callers.length);
      assert.equal(change.reached, callers.length);
    }
    // Each proxy receives the three services it calls (and its own, for its inbound side at most).
    for (const p of fleet.proxies) assert.ok(Object.keys(p.current()!.outbound).length <= 4);
  });
});
