// Gateway API semantics a caller can see, through real sidecars and the CLI: GAMMA route scope
// (a consumer route changes only its own namespace's callers), 500 invalid_backend for a backendRef
// to a Service that does not exist (503 once it exists without endpoints), and a ReferenceGrant
// opening a cross-namespace backend, and closing it again when deleted.
//
// reviews runs in namespace shop (v1 and v2 instances); one caller runs in namespace fast, another
// in namespace other.

import assert from "node:assert/strict";
import { after, before, test, type TestContext } from "node:test";
import { appOf, send, startControlApp, waitForApps, type Answer } from "../helpers/control-app.ts";
import {
  apply,
  startControlPlane,
  startProxy,
  waitUntil,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "../helpers/mesh.ts";
import { weft } from "../helpers/processes.ts";

let cp: ControlPlaneProcess;
let fast: ProxyProcess;
let other: ProxyProcess;

before(async () => {
  cp = await startControlPlane();
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: reviews-v2, namespace: shop }
spec: { selector: { weft.dev/service: reviews, version: v2 } }
`,
  );
  const [v1, v2, a, b] = await Promise.all([
    startControlApp("reviews-v1"),
    startControlApp("reviews-v2"),
    startControlApp("fast-caller"),
    startControlApp("other-caller"),
  ]);
  await Promise.all([
    startProxy(cp, "reviews", v1.port, ["-n", "shop", "--label", "version=v1"]),
    startProxy(cp, "reviews", v2.port, ["-n", "shop", "--label", "version=v2"]),
  ]);
  [fast, other] = await Promise.all([
    startProxy(cp, "web", a.port, ["-n", "fast"]),
    startProxy(cp, "admin", b.port, ["-n", "other"]),
  ]);
  await waitForApps(fast.outboundPort, "http://reviews.shop/", ["reviews-v1", "reviews-v2"], 6);
  await waitForApps(other.outboundPort, "http://reviews.shop/", ["reviews-v1", "reviews-v2"], 6);
});

after(async () => {
  await cp.stop();
});

/** Applies `yaml` and deletes what it created when the test ends (even when it fails). */
async function applyForTest(t: TestContext, yaml: string): Promise<void> {
  await apply(cp, yaml);
  t.after(async () => {
    const r = await weft(["delete", "-f", "-"], cp.env, yaml);
    assert.equal(r.code, 0, r.stderr);
  });
}

const get = (p: ProxyProcess, path = "/") => send(p.outboundPort, `http://reviews.shop${path}`);

async function until(p: ProxyProcess, ok: (a: Answer) => boolean, what: string): Promise<Answer> {
  let last: Answer | undefined;
  await waitUntil(async () => ok((last = await get(p))), 5000, what);
  return last!;
}

const route = (name: string, namespace: string, rule: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  parentRefs: [{ kind: Service, name: reviews, namespace: shop }]
  rules:
${rule}`;

const marker = (value: string) => `      filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: x-scope, value: ${value} }] }`;

test("a consumer route applies to its own namespace's callers only; others keep the producer route", async (t) => {
  await applyForTest(
    t,
    route("producer", "shop", `    - backendRefs: [{ name: reviews }]\n${marker("producer")}`) +
      "\n---" +
      route("consumer", "fast", `    - backendRefs: [{ name: reviews, namespace: shop }]\n${marker("fast")}`),
  );
  await until(fast, (a) => a.headers["x-scope"] === "fast", "fast's consumer route");
  await until(other, (a) => a.headers["x-scope"] === "producer", "the producer route for other");
  // Steady state: every request of each caller follows its own scope.
  for (let i = 0; i < 10; i++) {
    const f = await get(fast);
    const o = await get(other);
    assert.equal(f.status, 200);
    assert.equal(f.headers["x-scope"], "fast");
    assert.equal(o.headers["x-scope"], "producer");
  }
});

test("a backendRef to a Service that does not exist answers 500 invalid_backend; once it exists without endpoints, 503", async (t) => {
  await applyForTest(t, route("to-ghost", "shop", `    - backendRefs: [{ name: ghost }]`));
  const a = await until(other, (x) => x.status === 500, "the 500");
  assert.equal(a.headers["x-weft-error"], "invalid_backend");
  assert.match(
    a.body,
    /^invalid_backend: route shop\/to-ghost\/0 of reviews\.shop: Service ghost\.shop does not exist/,
  );
  await applyForTest(
    t,
    `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: ghost, namespace: shop }
`,
  );
  const b = await until(other, (x) => x.status === 503, "the 503 once ghost exists");
  assert.equal(b.headers["x-weft-error"], "upstream_unavailable");
});

test("a cross-namespace backendRef needs a ReferenceGrant in the backend's namespace; deleting it revokes", async (t) => {
  await applyForTest(t, route("to-v2", "fast", `    - backendRefs: [{ name: reviews-v2, namespace: shop }]`));
  const denied = await until(fast, (x) => x.status === 500, "the 500 without a grant");
  assert.equal(denied.headers["x-weft-error"], "invalid_backend");
  assert.match(denied.body, /no ReferenceGrant in shop allows HTTPRoutes from fast/);

  const grant = `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: fast-to-v2, namespace: shop }
spec:
  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: fast }]
  to: [{ group: "", kind: Service, name: reviews-v2 }]
`;
  await apply(cp, grant);
  await until(fast, (x) => appOf(x) === "reviews-v2", "reviews-v2 through the grant");
  for (let i = 0; i < 10; i++) assert.equal(appOf(await get(fast)), "reviews-v2");

  const r = await weft(["delete", "referencegrant", "fast-to-v2", "-n", "shop"], cp.env);
  assert.equal(r.code, 0, r.stderr);
  await until(fast, (x) => x.status === 500, "the 500 once the grant is gone");
});
