// Workloads without a sidecar are health-checked by the control plane itself: an unhealthy static
// endpoint leaves every proxy's config and shows as Unhealthy in `weft get workloads`.

import assert from "node:assert/strict";
import { test } from "node:test";
import { appOf, send, startControlApp, waitForApps } from "../helpers/control-app.ts";
import { apply, startControlPlane, startProxy, waitUntil } from "../helpers/mesh.ts";
import { weft } from "../helpers/processes.ts";

test("the control plane probes static workloads and takes a failing one out of every proxy's endpoints", async () => {
  const cp = await startControlPlane();
  const [s1, s2, caller] = await Promise.all([
    startControlApp("legacy-1"),
    startControlApp("legacy-2"),
    startControlApp("caller"),
  ]);
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: legacy-1 }
spec: { service: legacy, address: 127.0.0.1, port: ${s1.port} }
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: legacy-2 }
spec: { service: legacy, address: 127.0.0.1, port: ${s2.port} }
---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: { name: legacy }
spec:
  targetRef: { kind: Service, name: legacy }
  healthCheck:
    http: { path: /healthz }
    interval: 200ms
    timeout: 150ms
    healthyThreshold: 1
    unhealthyThreshold: 2
`,
  );
  const client = await startProxy(cp, "caller", caller.port);
  await waitForApps(client.outboundPort, "http://legacy/", ["legacy-1", "legacy-2"], 4);
  const health = async (name: string) => {
    const r = await weft(["get", "workloads", name, "-o", "json"], cp.env);
    return JSON.parse(r.stdout).status as { health: string; detail: string } | undefined;
  };

  s1.status = 500;
  await waitUntil(async () => (await health("legacy-1"))?.health === "Unhealthy", 5000, "legacy-1 Unhealthy");
  assert.match((await health("legacy-1"))!.detail, /checked by the control plane: .*500/);
  await waitUntil(
    async () => {
      for (let i = 0; i < 6; i++)
        if (appOf(await send(client.outboundPort, "http://legacy/")) !== "legacy-2") return false;
      return true;
    },
    5000,
    "all traffic on legacy-2",
  );
  const table = await weft(["get", "workloads"], cp.env);
  assert.match(table.stdout, /legacy-1.*Unhealthy/);

  s1.status = 200;
  await waitUntil(
    async () => (await health("legacy-1"))?.health === "Healthy",
    5000,
    "legacy-1 Healthy again",
  );
  await waitUntil(
    async () => appOf(await send(client.outboundPort, "http://legacy/back")) === "legacy-1",
    5000,
    "legacy-1 back in the endpoints",
  );
  await cp.stop();
});
