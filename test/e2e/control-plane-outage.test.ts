// The proxy survives the control plane's absence: traffic keeps flowing on the last good config, and
// after a restart the proxies reconnect and pick up new config.

import assert from "node:assert/strict";
import { test } from "node:test";
import { apply, httpGet, startApp, startControlPlane, startProxy, waitUntil } from "../helpers/mesh.ts";

test("control plane killed: traffic flows on last good config; restarted: proxies reconnect and take new config", async () => {
  let cp = await startControlPlane();
  const [a, b, c] = await Promise.all([startApp("orders-1"), startApp("billing-1"), startApp("client")]);
  await startProxy(cp, "orders", a.port);
  await startProxy(cp, "billing", b.port);
  const client = await startProxy(cp, "client", c.port);
  await waitUntil(
    async () => (await httpGet(client.outboundPort, "http://orders/")).status === 200,
    5000,
    "orders reachable",
  );

  cp.proc.kill("SIGKILL");
  await cp.exited;
  for (let i = 0; i < 20; i++) {
    const r = await httpGet(client.outboundPort, `http://orders/during-outage/${i}`);
    assert.equal(r.status, 200, "traffic keeps flowing while the control plane is down");
    assert.equal(JSON.parse(r.body).app, "orders-1");
  }
  const admin = await httpGet(client.adminPort, "/ready");
  assert.equal(admin.status, 200, "the proxy stays ready on its last good config");

  cp = await startControlPlane({ dataDir: cp.dataDir, apiPort: cp.apiPort, streamPort: cp.streamPort });
  // New config after the restart: send orders traffic to billing's instances instead.
  await apply(
    cp,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: orders-to-billing }
spec:
  parentRefs: [{ kind: Service, name: orders }]
  rules:
    - backendRefs: [{ name: billing }]
`,
  );
  await waitUntil(
    async () =>
      JSON.parse((await httpGet(client.outboundPort, "http://orders/after")).body).app === "billing-1",
    15_000,
    "proxy to reconnect and apply the new route",
  );
  await cp.stop();
});
