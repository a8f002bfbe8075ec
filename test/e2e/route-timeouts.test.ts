// Route timeouts govern both sidecars (issue 6, hole 4), through real sidecar processes over mTLS:
// the destination's sidecar is started with a short default (--response-headers-timeout 1s) and its
// app answers after 1.5 s. A route with `timeouts: {request: 3s}` gets its 200 — the calling sidecar
// told the destination how long to wait — while a rule without timeouts gets the destination's 504,
// which names the flag to change.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { send, startControlApp, type ControlApp } from "../helpers/control-app.ts";
import {
  apply,
  startControlPlane,
  startProxy,
  waitUntil,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "../helpers/mesh.ts";

let cp: ControlPlaneProcess;
let client: ProxyProcess;
let api: ControlApp;

before(async () => {
  cp = await startControlPlane();
  await apply(
    cp,
    `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: api }
spec: { ports: [{ port: 80 }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: api }
spec:
  parentRefs: [{ kind: Service, name: api }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /routed } }]
      timeouts: { request: 3s }
      backendRefs: [{ name: api }]
    - backendRefs: [{ name: api }]
`,
  );
  api = await startControlApp("api");
  const caller = await startControlApp("caller");
  await startProxy(cp, "api", api.port, ["--response-headers-timeout", "1s"]);
  client = await startProxy(cp, "caller", caller.port);
  await waitUntil(
    async () => (await send(client.outboundPort, "http://api/routed")).status === 200,
    10_000,
    "api reachable through the route",
  );
});

after(async () => {
  await cp.stop();
});

test("route timeout 3s, app answers after 1.5s, destination default 1s: 200, and the app never sees the deadline", async () => {
  api.reset();
  api.delayMs = 1500;
  const r = await send(client.outboundPort, "http://api/routed/slow");
  assert.equal(r.status, 200, r.body);
  assert.ok(r.ms >= 1400, `answered after ${r.ms} ms`);
  assert.equal(api.seen.length, 1);
  assert.equal(api.seen[0].headers["x-weft-deadline-ms"], undefined);
});

test("no route timeout: the destination's own default fires, and its 504 names where to change it", async () => {
  api.reset();
  api.delayMs = 1500;
  const r = await send(client.outboundPort, "http://api/plain");
  assert.equal(r.status, 504);
  assert.equal(r.headers["x-weft-error"], "timeout");
  assert.match(r.body, /no response headers within 1000 ms \(weft proxy --response-headers-timeout\)/);
  assert.ok(r.ms < 1400, `took ${r.ms} ms`);
  assert.equal(api.seen.length, 1, "sent once, not again after the timeout");
});
