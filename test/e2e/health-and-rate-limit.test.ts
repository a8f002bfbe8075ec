// TrafficPolicy's inbound rate limit and active health checks, end to end with real processes: the
// policy applied through the CLI, the limit enforced by the destination's sidecar (429 rate_limited),
// and an app failing its health path taken out of every client's load balancing through the control
// plane (the Workload's status), then put back when it recovers.

import assert from "node:assert/strict";
import { createServer } from "node:http";
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
import { weft } from "../helpers/processes.ts";

let cp: ControlPlaneProcess;
let web: ProxyProcess;
let mobile: ProxyProcess;

before(async () => {
  cp = await startControlPlane();
  const [webApp, mobileApp] = await Promise.all([startApp("web"), startApp("mobile")]);
  // Two client identities: spiffe://…/sa/web and spiffe://…/sa/mobile.
  [web, mobile] = await Promise.all([
    startProxy(cp, "web", webApp.port),
    startProxy(cp, "mobile", mobileApp.port),
  ]);
});

/** A backend whose /healthz can be switched to failing; every other path answers with its name. */
async function switchableApp(name: string) {
  const app = { healthy: true, healthChecks: 0, port: 0 };
  const server = createServer((req, res) => {
    req.resume();
    if (req.url === "/healthz") {
      app.healthChecks++;
      res.statusCode = app.healthy ? 200 : 500;
      return res.end(app.healthy ? "ok" : "failing");
    }
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ app: name }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  app.port = (server.address() as AddressInfo).port;
  return app;
}

/** The snapshot a proxy runs (its admin /config). */
async function runningConfig(p: ProxyProcess) {
  return JSON.parse((await httpGet(p.adminPort, "/config")).body);
}

async function metrics(p: ProxyProcess): Promise<string> {
  return (await httpGet(p.adminPort, "/metrics")).body;
}

/** Sum of the series of `name` whose labels include all of `labels`. */
function metricSum(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((w) => line.includes(w))) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** `n` requests one after another through a client sidecar; statuses and refusal codes, and how long it took. */
async function burst(client: ProxyProcess, url: string, n: number) {
  const started = Date.now();
  const replies = [];
  for (let i = 0; i < n; i++) replies.push(await httpGet(client.outboundPort, url));
  return {
    ok: replies.filter((r) => r.status === 200).length,
    limited: replies.filter((r) => r.status === 429),
    other: replies.filter((r) => r.status !== 200 && r.status !== 429).map((r) => `${r.status} ${r.body}`),
    ms: Date.now() - started,
  };
}

/** Passes at most `burst` plus what refilled while the requests ran (+1 for rounding at the edges). */
function assertLimited(
  b: Awaited<ReturnType<typeof burst>>,
  capacity: number,
  perSecond: number,
  what: string,
) {
  assert.deepEqual(b.other, [], `${what}: only 200 and 429`);
  const most = capacity + Math.ceil((b.ms / 1000) * perSecond) + 1;
  assert.ok(
    b.ok >= capacity && b.ok <= most,
    `${what}: ${b.ok} passed in ${b.ms} ms, expected ${capacity}–${most}`,
  );
  for (const r of b.limited) {
    assert.equal(r.headers["x-weft-error"], "rate_limited", r.body);
    assert.match(r.body, /^rate_limited: /);
    assert.ok(Number(r.headers["retry-after"]) >= 1, "Retry-After in whole seconds");
  }
}

test("rate limit: a TrafficPolicy caps requests to each instance; tokens come back; perSource limits each caller separately", async () => {
  const backend = await startApp("limited");
  const proxy = await startProxy(cp, "limited", backend.port);
  await waitUntil(
    async () =>
      (await httpGet(web.outboundPort, "http://limited/")).status === 200 &&
      (await httpGet(mobile.outboundPort, "http://limited/")).status === 200,
    10_000,
    "limited reachable from web and mobile",
  );

  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: { name: limited-rate }
spec:
  targetRef: { kind: Service, name: limited }
  rateLimit: { requestsPerSecond: 5, burst: 5 }
`,
  );
  await waitUntil(
    async () => (await runningConfig(proxy)).inbound.rateLimit?.requestsPerSecond === 5,
    5_000,
    "the limit in the destination sidecar's config",
  );

  const first = await burst(web, "http://limited/a", 20);
  assertLimited(first, 5, 5, "first burst");
  assert.ok(first.limited.length >= 10, `${first.limited.length} refused`);
  const refusedByProxy = metricSum(await metrics(proxy), "weft_rate_limited_total", {
    source_service: "web.default",
    destination_service: "limited.default",
  });
  assert.equal(refusedByProxy, first.limited.length, "every 429 counted in weft_rate_limited_total");

  // One second later the bucket is full again.
  await new Promise((r) => setTimeout(r, 1100));
  const refilled = await burst(web, "http://limited/b", 10);
  assertLimited(refilled, 5, 5, "after 1 s");

  // Without perSource, one caller's burst empties the bucket for everyone.
  const shared = await burst(mobile, "http://limited/c", 5);
  const refilledSince = Math.ceil(((refilled.ms + shared.ms) / 1000) * 5) + 1;
  assert.ok(
    shared.ok <= Math.min(refilledSince, 4),
    `mobile shares the instance's bucket: ${shared.ok} of 5 passed, at most ${refilledSince} had refilled`,
  );

  // perSource: web and mobile each get their own bucket.
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: { name: limited-rate }
spec:
  targetRef: { kind: Service, name: limited }
  rateLimit: { requestsPerSecond: 5, burst: 5, perSource: true }
`,
  );
  await waitUntil(
    async () => (await runningConfig(proxy)).inbound.rateLimit?.perSource === true,
    5_000,
    "perSource in the destination sidecar's config",
  );
  const fromWeb = await burst(web, "http://limited/d", 20);
  const fromMobile = await burst(mobile, "http://limited/e", 20);
  assertLimited(fromWeb, 5, 5, "web, perSource");
  assertLimited(fromMobile, 5, 5, "mobile right after web, perSource");
  const text = await metrics(proxy);
  assert.ok(metricSum(text, "weft_rate_limited_total", { source_service: "mobile.default" }) >= 10);

  // Deleting the policy removes the limit.
  assert.equal((await weft(["delete", "trafficpolicy", "limited-rate"], cp.env)).code, 0);
  await waitUntil(
    async () => (await runningConfig(proxy)).inbound.rateLimit === undefined,
    5_000,
    "the limit gone from the destination sidecar's config",
  );
  const free = await burst(web, "http://limited/f", 20);
  assert.equal(free.ok, 20, free.other.join("; "));
});

test("health check: an instance failing its health path is taken out of every client's balancing, and put back when it recovers", async () => {
  const [a, b] = await Promise.all([switchableApp("checked-a"), switchableApp("checked-b")]);
  const [proxyA] = await Promise.all([startProxy(cp, "checked", a.port), startProxy(cp, "checked", b.port)]);

  /** Which apps answer `n` requests from the web sidecar. */
  const answering = async (n: number) => {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await httpGet(web.outboundPort, "http://checked/");
      assert.equal(r.status, 200, r.body);
      seen.push(JSON.parse(r.body).app);
    }
    return seen;
  };
  await waitUntil(async () => new Set(await answering(6)).size === 2, 10_000, "both instances reachable");

  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: { name: checked-health }
spec:
  targetRef: { kind: Service, name: checked }
  healthCheck:
    http: { path: /healthz }
    interval: 250ms
    timeout: 200ms
    healthyThreshold: 1
    unhealthyThreshold: 2
`,
  );
  await waitUntil(() => a.healthChecks > 0 && b.healthChecks > 0, 5_000, "both sidecars checking their app");

  /** checked-a's Workload as `weft get workloads` shows it (matched by its sidecar's inbound port). */
  const workloadA = async () => {
    const r = await weft(["get", "workloads", "-o", "json"], cp.env);
    assert.equal(r.code, 0, r.stderr);
    const items = JSON.parse(r.stdout).items as {
      metadata: { name: string };
      spec: { service: string; port: number };
      status?: { health: string; detail?: string; since: string };
    }[];
    return items.find((w) => w.spec.service === "checked" && w.spec.port === proxyA.inboundPort);
  };

  const failedAt = Date.now();
  a.healthy = false;
  await waitUntil(
    async () => (await answering(10)).every((app) => app === "checked-b"),
    10_000,
    "every request to go to the healthy instance",
  );
  const unhealthy = await workloadA();
  assert.equal(unhealthy?.status?.health, "Unhealthy", JSON.stringify(unhealthy));
  assert.equal(unhealthy?.status?.detail, "GET /healthz: 500");
  assert.ok(Date.parse(unhealthy!.status!.since) >= failedAt - 1000);
  const table = await weft(["get", "workloads"], cp.env);
  const row = table.stdout.split("\n").find((l) => l.includes(unhealthy!.metadata.name));
  assert.match(row ?? "", /\bUnhealthy\b/, table.stdout);
  // It stays out while it keeps failing.
  assert.deepEqual(new Set(await answering(10)), new Set(["checked-b"]));
  const m = await metrics(proxyA);
  assert.ok(metricSum(m, "weft_health_checks_total", { result: "failure" }) >= 2);
  assert.equal(metricSum(m, "weft_app_healthy", {}), 0);
  // The sidecar itself stays ready: readiness is about config and certificate, not the app.
  assert.equal((await httpGet(proxyA.adminPort, "/ready")).status, 200);

  a.healthy = true;
  await waitUntil(
    async () => new Set(await answering(10)).size === 2,
    10_000,
    "traffic to return to both instances",
  );
  assert.equal((await workloadA())?.status?.health, "Healthy");
  assert.equal(metricSum(await metrics(proxyA), "weft_app_healthy", {}), 1);
});
