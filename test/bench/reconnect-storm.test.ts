// A reconnect storm in the suite: 300 simulated proxies (bench/control-plane's fleet, in a worker
// process of its own: the real certificate and config-stream clients) are connected to a control
// plane running in this process; the control plane is stopped and started again on the same ports
// and data, and all 300 reconnect at once. Asserted: every proxy is back (registered again by the
// new control plane) and ACKs a change made after the restart; no lease is lost or proxy declared
// unresponsive, even after more than a grace period; the control plane's RSS stays under a bound;
// and the storm's admission (stream queue) was actually exercised.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { WorkerFleet } from "../../bench/control-plane/fleet-worker.ts";
import {
  callsOf,
  NAMESPACE,
  routeYaml,
  serviceCount,
  serviceName,
  serviceOf,
  servicesYaml,
} from "../../bench/control-plane/mesh-shape.ts";
import type { SimProxySpec } from "../../bench/control-plane/sim-proxy.ts";
import { callApi, type ApiTarget } from "../../src/client/api-client.ts";
import { startControlPlane, type ControlPlane } from "../../src/control-plane/control-plane.ts";

const N = 300;
const GRACE_S = 5;
/** The control plane's RSS (this process: it and the test runner) stays under this during the storm. */
const RSS_BOUND_MB = 450;

test(
  `${N} proxies reconnecting at once after a control-plane restart all come back, no lease lost`,
  { timeout: 60_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "weft-storm-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const start = (listen = "127.0.0.1:0", streamListen = "127.0.0.1:0") =>
      startControlPlane({ dataDir: dir, listen, streamListen, graceSeconds: GRACE_S, debounceMs: 20 });
    let cp: ControlPlane = await start();
    t.after(() => cp.close());
    const admin: ApiTarget = { server: cp.apiUrl, ca: cp.ca.trustBundlePem, token: cp.adminToken };

    const services = serviceCount(N);
    await callApi(admin, "POST", "/api/v1/apply", servicesYaml(services), 30_000);
    const tokens: string[] = [];
    for (let i = 0; i < services; i++) {
      const r = await callApi<{ token: string }>(admin, "POST", "/api/v1/tokens", {
        service: serviceName(i),
        namespace: NAMESPACE,
      });
      tokens.push(r.token);
    }
    const specs: SimProxySpec[] = Array.from({ length: N }, (_, index) => ({
      index,
      service: serviceOf(index, services),
      token: tokens[Math.floor(index / 2) % services],
      reach: callsOf(index, services),
    }));
    const fleet = new WorkerFleet(0, 1024);
    t.after(() => fleet.stop());
    const target = { server: cp.apiUrl, stream: cp.streamUrl, ca: cp.ca.trustBundlePem };
    await fleet.start(target, specs);
    await until("all proxies ACKed their first snapshot", async () => (await fleet.stats()).acked === N);

    // The restart: same data, same addresses; every proxy's stream breaks at once.
    const [apiAddr, streamAddr] = [new URL(cp.apiUrl).host, new URL(cp.streamUrl).host];
    await cp.close();
    const restartedAt = Date.now();
    cp = await start(apiAddr, streamAddr);
    let rssPeakMb = 0;
    const sampler = setInterval(
      () => (rssPeakMb = Math.max(rssPeakMb, process.memoryUsage().rss / 1048576)),
      100,
    );
    t.after(() => clearInterval(sampler));

    // Back: every proxy registered again by the new control plane.
    const registered = () => cp.stream.sessions().filter((s) => s.workload !== undefined).length;
    await until(
      `all ${N} proxies registered with the restarted control plane`,
      async () => registered() === N,
    );
    const backMs = Date.now() - restartedAt;
    const admission = cp.stream.admission.stats;
    assert.ok(admission.admitted >= N, `admitted ${admission.admitted}`);

    // More than a grace period later, still all there: no lease ran out while the storm was queued.
    await new Promise((r) => setTimeout(r, (GRACE_S + 1) * 1000));
    const stats = await fleet.stats();
    assert.deepEqual(
      stats.errors,
      {},
      "no stream ended by the control plane (lease_lost, unresponsive, ...)",
    );
    assert.equal(registered(), N);
    const workloads = cp.state.list("Workload", NAMESPACE);
    assert.equal(workloads.length, N, "every proxy's Workload is registered");

    // And ACKed: a change made after the restart (an HTTPRoute on every service) reaches every proxy.
    const marker = `storm-${restartedAt}`;
    for (let i = 0; i < services; i++)
      await fleet.watch({
        id: `route-${i}`,
        service: `${serviceName(i)}.${NAMESPACE}`,
        check: { kind: "route", marker },
      });
    const routes = Array.from({ length: services }, (_, i) => routeYaml(serviceName(i), marker)).join(
      "---\n",
    );
    await callApi(admin, "POST", "/api/v1/apply", routes, 30_000);
    await until("every proxy ACKed the change", async () => {
      const w = (await fleet.stats()).watches;
      return Object.values(w).every((p) => p.reachedAt.length === p.affected);
    });
    const watches = Object.values((await fleet.stats()).watches);
    assert.equal(
      watches.reduce((n, w) => n + w.affected, 0),
      N * 3,
      "each proxy had its three services",
    );
    assert.ok(rssPeakMb < RSS_BOUND_MB, `control plane RSS peaked at ${rssPeakMb.toFixed(0)} MB`);
    t.diagnostic(
      `back in ${backMs} ms; RSS peak ${rssPeakMb.toFixed(0)} MB; stream admission ${JSON.stringify(admission)}; ` +
        `proxy start retries ${stats.startRetries}, streams lost ${stats.disconnects}`,
    );
  },
);

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
