// Traffic between real sidecar processes: round robin across instances, Host-based routing, and a
// route change applied through the CLI reaching every proxy within a second.

import assert from "node:assert/strict";
import { before, test } from "node:test";
import {
  apply,
  httpGet,
  startApp,
  startControlPlane,
  startProxy,
  waitUntil,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "../helpers/mesh.ts";
import { weft } from "../helpers/processes.ts";

let cp: ControlPlaneProcess;
let client1: ProxyProcess;
let client2: ProxyProcess;

before(async () => {
  cp = await startControlPlane();
  const [b1, b2, front] = await Promise.all([
    startApp("backend-1"),
    startApp("backend-2"),
    startApp("frontend"),
  ]);
  await Promise.all([
    startProxy(cp, "backend", b1.port, ["--label", "version=v1"]),
    startProxy(cp, "backend", b2.port, ["--label", "version=v2"]),
  ]);
  [client1, client2] = await Promise.all([
    startProxy(cp, "frontend", front.port),
    startProxy(cp, "frontend", front.port),
  ]);
  // Both backends registered and pushed to the clients.
  await waitUntil(
    async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++)
        seen.add(JSON.parse((await httpGet(client1.outboundPort, "http://backend/")).body).app);
      return seen.size === 2;
    },
    10_000,
    "both backends reachable",
  );
});

test("requests through another service's sidecar reach both instances round robin; the response is the app's", async () => {
  const apps: string[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await httpGet(client1.outboundPort, `http://backend/items/${i}?q=1`);
    assert.equal(r.status, 200, r.body);
    const body = JSON.parse(r.body);
    assert.equal(body.url, `/items/${i}?q=1`);
    assert.match(body.xfcc, /URI=spiffe:\/\/weft\.local\/ns\/default\/sa\/frontend/);
    apps.push(body.app);
  }
  // Strict alternation: round robin, not random.
  for (let i = 1; i < apps.length; i++)
    assert.notEqual(apps[i], apps[i - 1], `round robin broke: ${apps.join(",")}`);
  assert.deepEqual(new Set(apps), new Set(["backend-1", "backend-2"]));
});

test("origin-form requests whose Host names a mesh service are routed too", async () => {
  for (const host of ["backend", "backend.default", "backend.default.svc.cluster.local:8080"]) {
    const r = await httpGet(client1.outboundPort, "/hello", { host });
    assert.equal(r.status, 200, `Host: ${host}`);
    assert.match(JSON.parse(r.body).app, /^backend-/);
  }
  const r = await httpGet(client1.outboundPort, "/hello", { host: "nosuchservice" });
  assert.equal(r.status, 404);
  assert.equal(r.headers["x-weft-error"], "no_route");
});

test("a route change applied through the CLI is in effect on every proxy within 1 s", async () => {
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: backend-v2 }
spec: { selector: { weft.dev/service: backend, version: v2 } }
`,
  );
  const route = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: backend-v2-only }
spec:
  parentRefs: [{ kind: Service, name: backend }]
  rules:
    - backendRefs: [{ name: backend-v2 }]
`;
  const r = await weft(["apply", "-f", "-"], cp.env, route);
  assert.equal(r.code, 0, r.stderr);
  const appliedAt = Date.now();
  for (const client of [client1, client2]) {
    await waitUntil(
      async () => {
        for (let i = 0; i < 4; i++)
          if (JSON.parse((await httpGet(client.outboundPort, "http://backend/")).body).app !== "backend-2")
            return false;
        return true;
      },
      1000 - (Date.now() - appliedAt),
      "every request to go to backend-2",
    );
  }
  assert.ok(Date.now() - appliedAt < 1000);
  // And back: deleting the route restores round robin over both.
  assert.equal((await weft(["delete", "httproute", "backend-v2-only"], cp.env)).code, 0);
  await waitUntil(
    async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++)
        seen.add(JSON.parse((await httpGet(client2.outboundPort, "http://backend/")).body).app);
      return seen.size === 2;
    },
    1000,
    "round robin over both again",
  );
});
