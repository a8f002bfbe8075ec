// Route status through the real control plane and CLI: `weft get` shows each HTTPRoute's and
// GRPCRoute's Gateway API status (Accepted and ResolvedRefs per parentRef), computed from the current
// config, so it follows the resources it refers to as they come and go.

import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { test } from "node:test";
import { parse } from "yaml";
import { apply, startControlPlane, waitUntil } from "../helpers/mesh.ts";
import { weft } from "../helpers/processes.ts";

type Condition = { type: string; status: string; reason: string; message: string };

test("weft get shows a route's ResolvedRefs and Accepted per parent, and follows the config", async (t) => {
  const cp = await startControlPlane();
  t.after(async () => {
    await cp.stop();
    rmSync(cp.dataDir, { recursive: true, force: true });
  });
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: reviews }
spec: { ports: [{ port: 9080, name: http }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: canary }
spec:
  parentRefs: [{ kind: Service, name: reviews }, { kind: Service, name: reviews, port: 7000 }]
  rules:
    - backendRefs: [{ name: reviews, weight: 90 }, { name: reviews-v2, weight: 10 }]
`,
  );
  const get = async (...args: string[]) => {
    const r = await weft(["get", ...args], cp.env);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const brief = (route: { status: { parents: { conditions: Condition[] }[] } }) =>
    route.status.parents.map((p) => p.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).join(" "));

  const route = parse(await get("httproute", "canary", "-o", "yaml"));
  assert.deepEqual(brief(route), [
    "Accepted=True/Accepted ResolvedRefs=False/BackendNotFound",
    "Accepted=False/NoMatchingParent ResolvedRefs=False/BackendNotFound",
  ]);
  assert.equal(route.status.parents[0].controllerName, "weft.dev/control-plane");
  assert.deepEqual(route.status.parents[0].parentRef, { group: "", kind: "Service", name: "reviews" });
  assert.equal(
    route.status.parents[0].conditions[1].message,
    "spec.rules[0].backendRefs[1]: Service reviews-v2.default does not exist",
  );
  const table = await get("httproutes");
  assert.match(table, /^NAMESPACE\s+NAME\s+STATUS\s+DETAILS\s+AGE$/m);
  assert.match(
    table,
    /^default\s+canary\s+BackendNotFound,NoMatchingParent\s+parents=reviews,reviews rules=1/m,
  );

  // The missing Service appears: ResolvedRefs turns True without touching the route.
  await apply(cp, `apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: { name: reviews-v2 }\n`);
  await waitUntil(
    async () => /^default\s+canary\s+NoMatchingParent\s/m.test(await get("httproutes")),
    10_000,
    "ResolvedRefs True once reviews-v2 exists",
  );
});
