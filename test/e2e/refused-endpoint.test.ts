// Issue 6, hole 3 (in part), through real sidecar processes with default settings: one of a
// service's three endpoints refuses connections (a static Workload whose port nothing listens on).
// No retry policy is configured, yet no request fails: a refused connection carried nothing, so the
// calling sidecar sends the request to another endpoint at once, and avoids the refusing one from
// then on (connect backoff) instead of favouring it as the endpoint that answers fastest.

import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { after, before, test } from "node:test";
import { metricSum, send, startControlApp, waitForApps } from "../helpers/control-app.ts";
import {
  apply,
  httpGet,
  startControlPlane,
  startProxy,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "../helpers/mesh.ts";

let cp: ControlPlaneProcess;
let client: ProxyProcess;

before(async () => {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const refusing = (s.address() as net.AddressInfo).port;
  s.close();
  cp = await startControlPlane();
  await apply(
    cp,
    `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: api }
spec: { ports: [{ port: 80 }] }
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: api-gone }
spec: { service: api, address: 127.0.0.1, port: ${refusing} }
`,
  );
  const [a, b, caller] = await Promise.all([
    startControlApp("api-a"),
    startControlApp("api-b"),
    startControlApp("caller"),
  ]);
  await Promise.all([startProxy(cp, "api", a.port), startProxy(cp, "api", b.port)]);
  client = await startProxy(cp, "caller", caller.port);
  await waitForApps(client.outboundPort, "http://api/", ["api-a", "api-b"], 6);
});

after(async () => {
  await cp.stop();
});

test("one endpoint of three refuses connections, default settings: zero failed requests, and it is avoided", async () => {
  const before = (await httpGet(client.adminPort, "/metrics")).body;
  const statuses: number[] = [];
  for (let i = 0; i < 25; i++) {
    const batch = await Promise.all(
      Array.from({ length: 4 }, () => send(client.outboundPort, "http://api/x")),
    );
    for (const r of batch) statuses.push(r.status);
  }
  assert.deepEqual(
    statuses.filter((s) => s !== 200),
    [],
    "no failed requests",
  );
  const m = (await httpGet(client.adminPort, "/metrics")).body;
  const refused =
    metricSum(m, "weft_upstream_connect_failures_total", { direction: "outbound", reason: "connect" }) -
    metricSum(before, "weft_upstream_connect_failures_total", { direction: "outbound", reason: "connect" });
  // Without connect backoff LeastRequest would send it about a third of the 100 requests.
  assert.ok(refused <= 10, `the refusing endpoint was tried ${refused} times`);
  assert.ok(
    metricSum(m, "weft_retries_total", { reason: "not-sent" }) >= 1,
    "refused requests were sent elsewhere",
  );
});
