// Sidecar features end to end: explicit upstream ports, local replies that say what happened, the
// metrics contract, a real curl through HTTP_PROXY, and certificate renewal without dropping traffic.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { before, test } from "node:test";
import { promisify } from "node:util";
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

const run = promisify(execFile);
let cp: ControlPlaneProcess;
let client: ProxyProcess;
let server: ProxyProcess;
let upstreamPort: number;

before(async () => {
  // Short-lived certificates so that renewal happens during the test.
  cp = await startControlPlane({ extra: ["--cert-ttl", "4"] });
  const [api, web] = await Promise.all([startApp("api"), startApp("web")]);
  server = await startProxy(cp, "api", api.port);
  client = await startProxy(cp, "web", web.port, ["--upstream", "api=0"]);
  upstreamPort = Number(client.output().match(/upstream api=127\.0\.0\.1:(\d+)/)?.[1]);
  assert.ok(upstreamPort > 0, client.output());
  await waitUntil(
    async () => (await httpGet(client.outboundPort, "http://api/")).status === 200,
    5000,
    "api reachable",
  );
});

test("an explicit upstream port sends every request to its service, whatever the Host", async () => {
  const r = await httpGet(upstreamPort, "/via-upstream-port", { host: "anything.example" });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).app, "api");
  assert.equal(JSON.parse(r.body).url, "/via-upstream-port");
});

test("curl through HTTP_PROXY reaches the service by name", async () => {
  const { stdout } = await run("curl", ["-sS", "--max-time", "5", "http://api/from-curl"], {
    env: { ...process.env, http_proxy: `http://127.0.0.1:${client.outboundPort}` },
  });
  assert.equal(JSON.parse(stdout).url, "/from-curl");
});

test("local replies say what happened: upstream_unavailable when no instance accepts", async () => {
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: gone-1 }
spec: { service: gone, address: 127.0.0.1, port: 1 }
`,
  );
  await waitUntil(
    async () =>
      (await httpGet(client.outboundPort, "http://gone/")).headers["x-weft-error"] === "upstream_unavailable",
    2000,
    "upstream_unavailable",
  );
  const r = await httpGet(client.outboundPort, "http://gone/x");
  assert.equal(r.status, 503);
  assert.match(r.body, /^upstream_unavailable: /);
  const m = await httpGet(client.adminPort, "/metrics");
  assert.match(m.body, /weft_local_replies_total\{[^}]*code="upstream_unavailable"[^}]*\} [1-9]/);
});

test("metrics: requests counted on both sides with the documented labels", async () => {
  for (let i = 0; i < 5; i++)
    assert.equal((await httpGet(client.outboundPort, `http://api/m/${i}`)).status, 200);
  const out = (await httpGet(client.adminPort, "/metrics")).body;
  const inb = (await httpGet(server.adminPort, "/metrics")).body;
  const series = (text: string, direction: string) =>
    text
      .split("\n")
      .find(
        (l) =>
          l.startsWith("weft_requests_total{") &&
          l.includes(`direction="${direction}"`) &&
          l.includes('destination_service="api.default"') &&
          l.includes('response_code="200"'),
      );
  const o = series(out, "outbound");
  const n = series(inb, "inbound");
  assert.ok(o && n, `series missing:\n${out}\n${inb}`);
  for (const line of [o, n]) {
    assert.match(line, /source_service="web\.default"/);
    assert.match(line, /grpc_status=""/);
    assert.ok(Number(line.split(" ").at(-1)) >= 5);
  }
  assert.match(o, /route="default"/, "outbound requests carry the route that matched");
  assert.match(out, /weft_request_duration_seconds_bucket\{[^}]*direction="outbound"[^}]*le="\+Inf"\} \d+/);
});

test("certificates are renewed before they expire, and traffic keeps flowing across renewals", async () => {
  const serial = async (p: ProxyProcess) =>
    JSON.parse((await httpGet(p.adminPort, "/certs")).body).serial as string;
  const first = await serial(server);
  const deadline = Date.now() + 6000;
  let failures = 0;
  let requests = 0;
  while (Date.now() < deadline && (await serial(server)) === first) {
    const r = await httpGet(client.outboundPort, "http://api/renewal");
    requests++;
    if (r.status !== 200) failures++;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.notEqual(await serial(server), first, "the server proxy renewed its certificate");
  // Keep going past the first certificate's expiry (4 s) on new connections too.
  await new Promise((res) => setTimeout(res, 2500));
  for (let i = 0; i < 10; i++) {
    const r = await httpGet(client.outboundPort, "http://api/after-expiry");
    requests++;
    if (r.status !== 200) failures++;
  }
  assert.equal(failures, 0, `${failures} of ${requests} requests failed across renewals`);
});

test("--reach pre-loads: the proxy has config for the services it names before any call, and only those", async () => {
  const app = await startApp("scoped");
  const scoped = await startProxy(cp, "scoped", app.port, ["--reach", "api"]);
  const config = JSON.parse((await httpGet(scoped.adminPort, "/config")).body);
  assert.deepEqual(Object.keys(config.outbound), ["api.default"]);
  assert.deepEqual(config.subscriptions, []);
  await waitUntil(
    async () => (await httpGet(scoped.outboundPort, "http://api/")).status === 200,
    5000,
    "api reachable",
  );
  // Pre-loaded: no request waited for it.
  assert.doesNotMatch((await httpGet(scoped.adminPort, "/metrics")).body, /weft_discovery_requests_total\{/);
});
