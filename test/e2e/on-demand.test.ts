// On-demand config between real processes: a proxy started without --reach holds no destination
// until its app calls one; the first call waits for that destination (counted and timed), later ones
// do not; a name that is no Service is answered at once; a Service created afterwards is reachable;
// request bodies survive the wait (HTTP/1.1 and h2c); an unused subscription expires.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { connect } from "node:http2";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
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

let cp: ControlPlaneProcess;
let client: ProxyProcess;
let echoPort: number;
let echo: Server | undefined;
after(() => {
  echo?.closeAllConnections();
  echo?.close();
});

interface AdminConfig {
  outbound: Record<string, unknown>;
  unresolved?: string[];
  subscriptions?: string[];
}

async function config(p: ProxyProcess): Promise<AdminConfig> {
  return JSON.parse((await httpGet(p.adminPort, "/config")).body) as AdminConfig;
}

async function metric(p: ProxyProcess, pattern: RegExp): Promise<number> {
  const m = (await httpGet(p.adminPort, "/metrics")).body.match(pattern);
  return m ? Number(m[1]) : 0;
}

const found = /weft_discovery_requests_total\{result="found"\} (\d+)/;
const unresolved = /weft_discovery_requests_total\{result="unresolved"\} (\d+)/;

before(async () => {
  cp = await startControlPlane();
  const [backend, other, front] = await Promise.all([
    startApp("backend"),
    startApp("other"),
    startApp("frontend"),
  ]);
  // An app that answers with the body it received.
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => res.end(Buffer.concat(parts)));
  });
  echo = server;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  echoPort = (server.address() as AddressInfo).port;
  await Promise.all([startProxy(cp, "backend", backend.port), startProxy(cp, "other", other.port)]);
  client = await startProxy(cp, "frontend", front.port);
});

test("a proxy without --reach starts with no destination; the first call subscribes, waits, is counted", async () => {
  const first = await config(client);
  assert.deepEqual(Object.keys(first.outbound), [], "nothing pre-loaded");
  assert.deepEqual(first.subscriptions, []);

  const r = await httpGet(client.outboundPort, "http://backend/first");
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).app, "backend");
  assert.equal(await metric(client, found), 1, "the wait is counted");
  assert.match(
    (await httpGet(client.adminPort, "/metrics")).body,
    /weft_discovery_wait_seconds_count 1\b/,
    "and timed",
  );

  // Cached: no second wait.
  assert.equal((await httpGet(client.outboundPort, "http://backend/again")).status, 200);
  assert.equal(await metric(client, found), 1);

  // Small: only what was called.
  const after = await config(client);
  assert.deepEqual(Object.keys(after.outbound), ["backend.default"]);
  assert.deepEqual(after.subscriptions, ["backend"]);
});

test("a name that is no Service answers no_route at once; once created, it is reachable", async () => {
  const t0 = performance.now();
  const miss = await httpGet(client.outboundPort, "http://later/");
  const waited = performance.now() - t0;
  assert.equal(miss.status, 404);
  assert.equal(miss.headers["x-weft-error"], "no_route");
  assert.ok(
    waited < 2000,
    `answered when the control plane said "unresolved", not at the 3 s bound (${waited} ms)`,
  );
  assert.equal(await metric(client, unresolved), 1);
  assert.deepEqual((await config(client)).unresolved, ["later"]);
  // Known to be unresolved: answered without asking again.
  assert.equal((await httpGet(client.outboundPort, "http://later/")).status, 404);
  assert.equal(await metric(client, unresolved), 1);

  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: later }
spec: { ports: [{ port: 8080, protocol: http }] }
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: later-1 }
spec: { service: later, address: 127.0.0.1, port: ${echoPort} }
`,
  );
  await waitUntil(
    async () => (await httpGet(client.outboundPort, "http://later/")).status === 200,
    5000,
    "the new service pushed to the subscribed proxy",
  );
  const c = await config(client);
  assert.equal(c.unresolved, undefined);
  assert.deepEqual(Object.keys(c.outbound).sort(), ["backend.default", "later.default"]);
});

test("request bodies survive the wait: HTTP/1.1 through HTTP_PROXY (curl) and h2c", async () => {
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: echo-1 }
spec: { service: echo, address: 127.0.0.1, port: ${echoPort} }
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: echo2-1 }
spec: { service: echo2, address: 127.0.0.1, port: ${echoPort} }
`,
  );
  const body = "x".repeat(100_000);
  const posted = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      "curl",
      ["-sS", "--max-time", "5", "--data-binary", "@-", "http://echo/post"],
      { env: { ...process.env, http_proxy: `http://127.0.0.1:${client.outboundPort}` } },
      (err, out) => (err ? reject(err) : resolve(out)),
    );
    child.stdin?.end(body);
  });
  assert.equal(posted.length, body.length, "curl's body arrived whole after the first-call wait");

  const session = connect(`http://127.0.0.1:${client.outboundPort}`);
  try {
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": "/h2", ":authority": "echo2" });
      let out = "";
      req.setEncoding("utf8");
      req.on("data", (d: string) => (out += d));
      req.on("end", () => resolve(out));
      req.on("error", reject);
      req.end(body);
    });
    assert.equal(echoed.length, body.length, "the h2 stream's body arrived whole");
  } finally {
    session.close();
  }
});

test("a subscription not used for --subscription-idle is unsubscribed and its config removed", async () => {
  const app = await startApp("idle-client");
  const p = await startProxy(cp, "idler", app.port, ["--subscription-idle", "300ms"]);
  try {
    assert.equal((await httpGet(p.outboundPort, "http://backend/")).status, 200);
    await waitUntil(
      async () => {
        const c = await config(p);
        return Object.keys(c.outbound).length === 0 && c.subscriptions?.length === 0;
      },
      5000,
      "the idle subscription expired and its config left the proxy",
    );
    // Called again: subscribed again.
    assert.equal((await httpGet(p.outboundPort, "http://backend/")).status, 200);
    assert.equal(await metric(p, found), 2);
  } finally {
    await p.stop();
  }
});
