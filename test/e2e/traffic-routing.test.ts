// Traffic management through real sidecars: weighted splits, matches and precedence, every
// HTTPRoute filter, mirroring, fault injection and route timeouts. Each test applies its resources
// through the CLI, waits for the behaviour to show, and removes them again.

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
let v1: ControlApp;
let v2: ControlApp;
let shadow: ControlApp;

const SERVICES = `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: shop }
spec: { ports: [{ port: 80 }] }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: shop-v1 }
spec: { selector: { weft.dev/service: shop, version: v1 } }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: shop-v2 }
spec: { selector: { weft.dev/service: shop, version: v2 } }
`;

before(async () => {
  cp = await startControlPlane();
  await apply(cp, SERVICES);
  [v1, v2, shadow] = await Promise.all([
    startControlApp("shop-v1"),
    startControlApp("shop-v2"),
    startControlApp("shadow"),
  ]);
  const caller = await startControlApp("caller");
  await Promise.all([
    startProxy(cp, "shop", v1.port, ["--label", "version=v1"]),
    startProxy(cp, "shop", v2.port, ["--label", "version=v2"]),
    startProxy(cp, "shadow", shadow.port),
  ]);
  client = await startProxy(cp, "caller", caller.port);
  await waitForApps(client.outboundPort, "http://shop/", ["shop-v1", "shop-v2"], 4);
});

after(async () => {
  await cp.stop();
});

async function remove(kind: string, name: string): Promise<void> {
  const r = await weft(["delete", kind, name], cp.env);
  assert.equal(r.code, 0, r.stderr);
}

function reset(): void {
  for (const a of [v1, v2, shadow]) a.reset();
}

const route = (name: string, rules: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name} }
spec:
  parentRefs: [{ kind: Service, name: shop }]
  rules:
${rules}`;

test("a weighted split sends each backend its share within statistical tolerance", async () => {
  await apply(
    cp,
    route("split", `    - backendRefs: [{ name: shop-v1, weight: 80 }, { name: shop-v2, weight: 20 }]`),
  );
  // The split is in effect once v1 answers far more often than v2.
  await waitUntil(
    async () => {
      let n1 = 0;
      for (let i = 0; i < 20; i++)
        if (appOf(await send(client.outboundPort, "http://shop/")) === "shop-v1") n1++;
      return n1 >= 13;
    },
    5000,
    "the 80/20 split",
  );
  const N = 600;
  let n2 = 0;
  for (let i = 0; i < N; i++)
    if (appOf(await send(client.outboundPort, `http://shop/${i}`)) === "shop-v2") n2++;
  // Binomial(600, 0.2): mean 120, sd ≈ 9.8; ±4 sd.
  assert.ok(n2 > 80 && n2 < 160, `v2 got ${n2} of ${N}`);
  await remove("httproute", "split");
});

test("matches: exact beats prefix, longer prefix beats shorter, then headers, query and method", async () => {
  await apply(
    cp,
    route(
      "matches",
      `    - matches: [{ path: { type: PathPrefix, value: /api } }]
      backendRefs: [{ name: shop-v1 }]
    - matches: [{ path: { type: Exact, value: /api/special } }]
      backendRefs: [{ name: shop-v2 }]
    - matches: [{ path: { type: PathPrefix, value: /api/v2 } }]
      backendRefs: [{ name: shop-v2 }]
    - matches: [{ path: { type: PathPrefix, value: /api }, headers: [{ name: x-canary, value: "yes" }] }]
      backendRefs: [{ name: shop-v2 }]
    - matches: [{ path: { type: PathPrefix, value: /api }, queryParams: [{ name: beta, type: RegularExpression, value: "t.*" }] }]
      backendRefs: [{ name: shop-v2 }]
    - matches: [{ path: { type: PathPrefix, value: /api }, method: DELETE }]
      backendRefs: [{ name: shop-v2 }]
    - matches: [{ path: { type: RegularExpression, value: "/items/[0-9]+" } }]
      backendRefs: [{ name: shop-v2 }]`,
    ),
  );
  await waitUntil(
    async () => appOf(await send(client.outboundPort, "http://shop/api/special")) === "shop-v2",
    5000,
    "the match route",
  );
  const cases: [string, string, Record<string, string>, string | undefined][] = [
    ["GET", "/api/x", {}, "shop-v1"],
    ["GET", "/api/special", {}, "shop-v2"],
    ["GET", "/api/special/more", {}, "shop-v1"],
    ["GET", "/api/v2/x", {}, "shop-v2"],
    ["GET", "/api/v2x", {}, "shop-v1"], // a prefix matches whole segments only
    ["GET", "/api/x", { "x-canary": "yes" }, "shop-v2"],
    ["GET", "/api/x?beta=true", {}, "shop-v2"],
    ["GET", "/api/x?beta=false", {}, "shop-v1"],
    ["DELETE", "/api/x", {}, "shop-v2"],
    ["GET", "/items/42", {}, "shop-v2"],
    ["GET", "/items/abc", {}, undefined], // nothing matches: no_route
  ];
  for (const [method, path, headers, want] of cases) {
    const r = await send(client.outboundPort, `http://shop${path}`, { method, headers });
    assert.equal(appOf(r), want, `${method} ${path} ${JSON.stringify(headers)} → ${r.status} ${r.body}`);
    if (want === undefined) assert.equal(r.headers["x-weft-error"], "no_route");
  }
  await remove("httproute", "matches");
});

test("filters: request and response headers, URL rewrite, redirect", async () => {
  reset();
  await apply(
    cp,
    route(
      "filters",
      `    - matches: [{ path: { type: PathPrefix, value: /old } }]
      filters:
        - type: RequestRedirect
          requestRedirect: { hostname: shop.example, path: { type: ReplacePrefixMatch, replacePrefixMatch: /new }, statusCode: 301 }
    - matches: [{ path: { type: PathPrefix, value: /api } }]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{ name: x-env, value: mesh }]
            add: [{ name: x-added, value: "1" }]
            remove: [x-secret]
        - type: ResponseHeaderModifier
          responseHeaderModifier:
            set: [{ name: x-served-by, value: weft }]
            remove: [x-app]
        - type: URLRewrite
          urlRewrite: { hostname: shop.internal, path: { type: ReplacePrefixMatch, replacePrefixMatch: /v2 } }
      backendRefs: [{ name: shop-v1 }]`,
    ),
  );
  await waitUntil(
    async () => (await send(client.outboundPort, "http://shop/old/cart")).status === 301,
    5000,
    "the filter route",
  );
  reset(); // probes sent before the route was live reached the app through the default route
  const redirect = await send(client.outboundPort, "http://shop/old/cart?id=7");
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.location, "http://shop.example/new/cart?id=7");
  assert.equal(v1.seen.length + v2.seen.length, 0, "a redirect never reaches the app");

  const r = await send(client.outboundPort, "http://shop/api/items?x=1", {
    headers: { "x-env": "laptop", "x-secret": "s3cret", "x-added": "0" },
  });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers["x-served-by"], "weft");
  assert.equal(r.headers["x-app"], undefined, "response header removed");
  const seen = v1.seen.at(-1)!;
  assert.equal(seen.url, "/v2/items?x=1");
  assert.equal(seen.headers.host, "shop.internal");
  assert.equal(seen.headers["x-env"], "mesh");
  assert.equal(seen.headers["x-secret"], undefined);
  assert.equal(seen.headers["x-added"], "0, 1");
  await remove("httproute", "filters");
});

test("a mirror gets a copy of each request; a slow or failing mirror never delays or alters the real response", async () => {
  reset();
  shadow.delayMs = 1500;
  shadow.status = 500;
  await apply(
    cp,
    route(
      "mirror",
      `    - filters:
        - type: RequestMirror
          requestMirror: { backendRef: { name: shadow } }
      backendRefs: [{ name: shop-v1 }]`,
    ),
  );
  await waitUntil(
    async () => {
      await send(client.outboundPort, "http://shop/probe");
      return shadow.seen.length > 0 || shadow.inFlight > 0;
    },
    5000,
    "the mirror route",
  );
  await waitUntil(() => shadow.inFlight === 0, 5000, "earlier mirrored requests to finish");
  reset();
  shadow.delayMs = 1500;
  shadow.status = 500;
  const r = await send(client.outboundPort, "http://shop/orders", { method: "POST", body: '{"n":1}' });
  assert.equal(r.status, 200);
  assert.equal(appOf(r), "shop-v1");
  assert.ok(r.ms < 1000, `the real response took ${r.ms} ms`);
  await waitUntil(() => shadow.seen.length === 1, 5000, "the mirrored copy");
  const copy = shadow.seen[0];
  assert.equal(copy.method, "POST");
  assert.equal(copy.url, "/orders");
  assert.equal(copy.body, '{"n":1}');
  assert.match(String(copy.headers.host), /^shop-shadow/);
  await waitUntil(
    async () =>
      metricSum((await httpGet(client.adminPort, "/metrics")).body, "weft_mirrored_requests_total", {
        destination_service: "shadow.default",
        outcome: "5xx",
      }) >= 1,
    5000,
    "the mirror metric",
  );
  await remove("httproute", "mirror");
});

test("fault injection: aborts with the configured status, delays by the configured time", async () => {
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: { name: broken }
spec: { abort: { httpStatus: 418, percent: 100 } }
---
apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: { name: slow }
spec: { delay: { fixedDelay: 300ms, percent: 100 } }
${route(
  "faults",
  `    - matches: [{ path: { type: PathPrefix, value: /broken } }]
      filters: [{ type: ExtensionRef, extensionRef: { group: weft.dev, kind: FaultInjection, name: broken } }]
      backendRefs: [{ name: shop-v1 }]
    - matches: [{ path: { type: PathPrefix, value: /slow } }]
      filters: [{ type: ExtensionRef, extensionRef: { group: weft.dev, kind: FaultInjection, name: slow } }]
      backendRefs: [{ name: shop-v1 }]
    - matches: [{ path: { type: PathPrefix, value: /missing } }]
      filters: [{ type: ExtensionRef, extensionRef: { group: weft.dev, kind: FaultInjection, name: nosuch } }]
      backendRefs: [{ name: shop-v1 }]`,
).replace(/^\n/, "---\n")}`,
  );
  await waitUntil(
    async () => (await send(client.outboundPort, "http://shop/broken")).status === 418,
    5000,
    "the fault route",
  );
  reset();
  for (let i = 0; i < 5; i++) {
    const r = await send(client.outboundPort, "http://shop/broken");
    assert.equal(r.status, 418);
    assert.equal(r.headers["x-weft-error"], "fault_injected");
  }
  assert.equal(v1.seen.length, 0, "an aborted request never reaches the app");
  const slow = await send(client.outboundPort, "http://shop/slow");
  assert.equal(slow.status, 200);
  assert.ok(slow.ms >= 290, `delayed only ${slow.ms} ms`);
  // An ExtensionRef that names nothing answers 500, as the Gateway API requires.
  const missing = await send(client.outboundPort, "http://shop/missing");
  assert.equal(missing.status, 500);
  const m = (await httpGet(client.adminPort, "/metrics")).body;
  assert.ok(metricSum(m, "weft_faults_injected_total", { fault: "abort" }) >= 5);
  assert.ok(metricSum(m, "weft_faults_injected_total", { fault: "delay" }) >= 1);
  await remove("httproute", "faults");
});

test("a route's request timeout answers 504 timeout instead of waiting on a slow backend", async () => {
  reset();
  v1.delayMs = 2000;
  await apply(
    cp,
    route(
      "timeouts",
      `    - timeouts: { request: 250ms }
      backendRefs: [{ name: shop-v1 }]`,
    ),
  );
  await waitUntil(
    async () => (await send(client.outboundPort, "http://shop/t")).status === 504,
    8000,
    "the timeout route",
  );
  const r = await send(client.outboundPort, "http://shop/t");
  assert.equal(r.status, 504);
  assert.equal(r.headers["x-weft-error"], "timeout");
  assert.ok(r.ms < 1500, `took ${r.ms} ms`);
  v1.delayMs = 0;
  await remove("httproute", "timeouts");
});
