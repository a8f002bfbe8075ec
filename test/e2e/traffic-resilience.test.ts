// Resilience through real sidecars: retries hide a flaky instance, the retry budget stops a retry
// storm, hedging cuts the tail, circuit breaking sheds fast, outlier detection ejects and returns,
// and the balancers (peak-EWMA, ring hash) distribute as they promise.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  appOf,
  metricSum,
  send,
  startControlApp,
  type ControlApp,
  waitForApps,
} from "../helpers/control-app.ts";
import {
  apply,
  httpGet,
  startControlPlane,
  startProxy,
  waitUntil,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "../helpers/mesh.ts";
import { weft } from "../helpers/processes.ts";

let cp: ControlPlaneProcess;
let client: ProxyProcess;
let a1: ControlApp;
let a2: ControlApp;
let a1Proxy: ProxyProcess;

before(async () => {
  cp = await startControlPlane();
  [a1, a2] = await Promise.all([startControlApp("api-1"), startControlApp("api-2")]);
  const caller = await startControlApp("caller");
  [a1Proxy] = await Promise.all([startProxy(cp, "api", a1.port), startProxy(cp, "api", a2.port)]);
  client = await startProxy(cp, "caller", caller.port);
  await waitForApps(client.outboundPort, "http://api/", ["api-1", "api-2"], 4);
});

after(async () => {
  await cp.stop();
});

function reset(): void {
  a1.reset();
  a2.reset();
}

async function remove(kind: string, name: string): Promise<void> {
  const r = await weft(["delete", kind, name], cp.env);
  assert.equal(r.code, 0, r.stderr);
}

async function metrics(): Promise<string> {
  return (await httpGet(client.adminPort, "/metrics")).body;
}

const route = (name: string, rule: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name} }
spec:
  parentRefs: [{ kind: Service, name: api }]
  rules:
    - backendRefs: [{ name: api }]
${rule}`;

const policy = (spec: string) => `
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: { name: api }
spec:
  targetRef: { kind: Service, name: api }
${spec}`;

/** Waits until the client's running config has a route/policy feature (its /config JSON mentions it). */
async function configHas(fragment: string, present = true): Promise<void> {
  await waitUntil(
    async () => (await httpGet(client.adminPort, "/config")).body.includes(fragment) === present,
    5000,
    `config ${present ? "with" : "without"} ${fragment}`,
  );
}

// First: peak-EWMA remembers latency peaks for ~10 s, and later tests make both instances slow.
test("peak-EWMA moves load away from a slow instance", async (t) => {
  reset();
  await apply(cp, policy(`  loadBalancer: { type: PeakEWMA }`));
  // In t.after, so that a failure here does not leave PeakEWMA (and its latency memory) to the next tests.
  t.after(async () => {
    a1.delayMs = 0;
    await remove("trafficpolicy", "api");
  });
  await configHas('"PeakEWMA"');
  // Well above the scheduling noise of a shared 2-core machine.
  a1.delayMs = 150;
  const counts: Record<string, number> = {};
  for (let i = 0; i < 60; i += 4) {
    const rs = await Promise.all(
      Array.from({ length: 4 }, (_, k) => send(client.outboundPort, `http://api/w/${i + k}`)),
    );
    for (const r of rs) counts[appOf(r) ?? "?"] = (counts[appOf(r) ?? "?"] ?? 0) + 1;
  }
  assert.ok((counts["api-2"] ?? 0) >= 40, `distribution ${JSON.stringify(counts)}`);
});

test("retries hide a flaky instance from the caller", async (t) => {
  reset();
  await apply(cp, route("retry", `      retry: { attempts: 2, backoff: 10ms }`));
  t.after(() => remove("httproute", "retry"));
  await configHas('"retry"');
  a1.status = 503; // api-1 fails everything; api-2 is fine
  const before = metricSum(await metrics(), "weft_retries_total");
  for (let i = 0; i < 20; i++) {
    const r = await send(client.outboundPort, `http://api/r/${i}`);
    assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.body}`);
    assert.equal(appOf(r), "api-2");
  }
  assert.ok(a1.seen.length > 0, "api-1 was tried");
  const retried = metricSum(await metrics(), "weft_retries_total", { reason: "gateway-error" }) - before;
  assert.ok(retried >= a1.seen.length * 0.9, `retries counted ${retried}, api-1 failures ${a1.seen.length}`);
  // POST is not retried unless the rule says so: some POSTs see api-1's 503.
  let failed = 0;
  for (let i = 0; i < 10; i++)
    if ((await send(client.outboundPort, "http://api/p", { method: "POST", body: "x" })).status === 503)
      failed++;
  assert.ok(failed > 0, "a POST was retried although the rule does not allow it");
});

test("the retry budget stops a retry storm when every instance is down", async () => {
  reset();
  await apply(
    cp,
    route("storm", `      retry: { attempts: 3, backoff: 1ms }`) +
      "\n---" +
      policy(`  retryBudget: { percent: 20, minRetriesPerSecond: 1 }`),
  );
  await configHas('"retryBudget"');
  a1.status = a2.status = 503;
  const N = 200;
  const before = metricSum(await metrics(), "weft_retry_budget_exhausted_total");
  for (let i = 0; i < N; i += 10) {
    await Promise.all(
      Array.from({ length: 10 }, (_, k) => send(client.outboundPort, `http://api/s/${i + k}`)),
    );
  }
  const hits = a1.seen.length + a2.seen.length;
  // Without a budget: 4 × 200 = 800. With it: 200 + 20 % + the 1/s minimum over the 10 s window.
  assert.ok(hits >= N, `every request reached an instance at least once (${hits})`);
  assert.ok(hits <= N * 1.2 + 10 + 15, `instances saw ${hits} requests for ${N}`);
  assert.ok(metricSum(await metrics(), "weft_retry_budget_exhausted_total") > before);
  await remove("httproute", "storm");
  await remove("trafficpolicy", "api");
});

test("hedging: a second attempt after the hedge delay cuts the tail against a slow instance", async (t) => {
  reset();
  await apply(cp, route("hedge", `      retry: { attempts: 1, hedge: { delay: 50ms } }`));
  t.after(async () => {
    a1.delayMs = 0;
    await remove("httproute", "hedge");
  });
  await configHas('"hedge"');
  a1.delayMs = 1000;
  const times: number[] = [];
  for (let i = 0; i < 16; i++) {
    const r = await send(client.outboundPort, `http://api/h/${i}`);
    assert.equal(r.status, 200);
    assert.equal(appOf(r), "api-2", "the fast instance's answer wins");
    times.push(r.ms);
  }
  times.sort((x, y) => x - y);
  const p90 = times[Math.floor(times.length * 0.9)];
  assert.ok(p90 < 600, `p90 ${p90} ms with a 1000 ms instance: ${times.join(",")}`);
  assert.ok(metricSum(await metrics(), "weft_hedges_total", { outcome: "won" }) > 0);
});

test("circuit breaking: past maxRequests in flight the overflow is refused fast with circuit_open", async () => {
  reset();
  await apply(cp, policy(`  connectionPool: { maxRequests: 2 }`));
  await configHas('"maxRequests"');
  a1.delayMs = a2.delayMs = 700;
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => send(client.outboundPort, `http://api/c/${i}`)),
  );
  const open = results.filter((r) => r.headers["x-weft-error"] === "circuit_open");
  const ok = results.filter((r) => r.status === 200);
  assert.equal(ok.length, 2, results.map((r) => r.status).join(","));
  assert.equal(open.length, 6);
  for (const r of open) {
    assert.equal(r.status, 503);
    assert.ok(r.ms < 400, `an overflowing request waited ${r.ms} ms`);
  }
  assert.ok(
    metricSum(await metrics(), "weft_circuit_breaker_overflows_total", { limit: "max_requests" }) >= 6,
  );
  a1.delayMs = a2.delayMs = 0;
  await remove("trafficpolicy", "api");
});

test("circuit breaking: at maxConnections per endpoint requests wait, past maxPendingRequests they are refused", async () => {
  reset();
  await apply(cp, policy(`  connectionPool: { maxConnections: 1, maxPendingRequests: 1 }`));
  await configHas('"maxPendingRequests"');
  a1.delayMs = a2.delayMs = 500;
  // 8 at once over 2 instances: per instance one runs, one waits for that connection, two are refused.
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => send(client.outboundPort, `http://api/q/${i}`)),
  );
  const ok = results.filter((r) => r.status === 200);
  const open = results.filter((r) => r.headers["x-weft-error"] === "circuit_open");
  assert.equal(ok.length, 4, results.map((r) => r.status).join(","));
  assert.equal(open.length, 4);
  for (const r of open) assert.ok(r.ms < 400, `a refused request waited ${r.ms} ms`);
  // The waiting ones were served one after the other on the single connection.
  assert.ok(Math.max(...ok.map((r) => r.ms)) >= 950, "queued requests waited for the connection");
  assert.equal(Math.max(a1.inFlight, a2.inFlight), 0);
  assert.ok(
    metricSum(await metrics(), "weft_circuit_breaker_overflows_total", { limit: "max_pending_requests" }) >=
      4,
  );
  a1.delayMs = a2.delayMs = 0;
  await remove("trafficpolicy", "api");
});

test("outlier detection ejects a failing instance and lets it back after the ejection time", async () => {
  reset();
  await apply(
    cp,
    policy(`  outlierDetection: { consecutiveFailures: 3, baseEjectionTime: 1s, maxEjectionPercent: 50 }`),
  );
  await configHas('"outlierDetection"');
  a1.status = 500;
  for (let i = 0; i < 12; i++) await send(client.outboundPort, `http://api/o/${i}`);
  const failuresBefore = a1.seen.length;
  assert.ok(failuresBefore >= 3 && failuresBefore <= 6, `api-1 saw ${failuresBefore} before ejection`);
  for (let i = 0; i < 10; i++)
    assert.equal(appOf(await send(client.outboundPort, `http://api/e/${i}`)), "api-2");
  assert.equal(a1.seen.length, failuresBefore, "no traffic to the ejected instance");
  assert.ok(
    metricSum(await metrics(), "weft_outlier_ejections_total", { destination_service: "api.default" }) >= 1,
  );
  // The admin port shows which endpoint is out, and for how long.
  const clusters = JSON.parse((await httpGet(client.adminPort, "/clusters")).body).clusters as {
    destination: string;
    endpoints: { endpoint: string; ejected: boolean; ejectedForMs?: number }[];
  }[];
  const api = clusters.find((c) => c.destination === "api.default")!;
  const out = api.endpoints.filter((e) => e.ejected);
  assert.equal(out.length, 1, JSON.stringify(api.endpoints));
  assert.ok(out[0].endpoint.includes(`:${a1Proxy.inboundPort}`), `${out[0].endpoint} is api-1's sidecar`);
  assert.ok(out[0].ejectedForMs! > 0 && out[0].ejectedForMs! <= 1000);
  a1.status = 200;
  await waitUntil(
    async () => appOf(await send(client.outboundPort, "http://api/back")) === "api-1",
    5000,
    "api-1 back after its ejection time",
  );
  await remove("trafficpolicy", "api");
});

for (const [type, hash, header] of [
  ["RingHash", "{ header: x-user }", (u: string) => ({ "x-user": u })],
  ["Maglev", "{ cookie: session }", (u: string) => ({ cookie: `theme=dark; session=${u}` })],
] as const) {
  test(`${type} keeps a key on one instance and spreads keys across instances`, async () => {
    reset();
    await apply(cp, policy(`  loadBalancer: { type: ${type}, hash: ${hash} }`));
    await configHas(`"${type}"`);
    const owners = new Map<string, Set<string | undefined>>();
    for (let u = 0; u < 12; u++) {
      const set = new Set<string | undefined>();
      for (let i = 0; i < 5; i++)
        set.add(appOf(await send(client.outboundPort, "http://api/k", { headers: header(`user-${u}`) })));
      owners.set(`user-${u}`, set);
    }
    for (const [user, set] of owners) assert.equal(set.size, 1, `${user} went to ${[...set].join(",")}`);
    const used = new Set([...owners.values()].map((s) => [...s][0]));
    assert.equal(used.size, 2, "12 keys all landed on one instance");
    await remove("trafficpolicy", "api");
  });
}
