// Memory proportional to the mesh, returned when the mesh shrinks: a control plane that served N
// Services with routes, policies, faults, a cross-namespace grant and N connected proxies holds
// nothing of them once they are gone — every index map, compiled piece, view, snapshot-cache entry,
// session and admission queue is empty again. Counted in entries, not bytes.

import assert from "node:assert/strict";
import { test } from "node:test";
import { callApi } from "../client/api-client.ts";
import { startHarness } from "../../test/helpers/stream-client.ts";

const N = 20;

function meshYaml(): string {
  const docs: string[] = [];
  for (let i = 0; i < N; i++) {
    const next = `svc${(i + 1) % N}`;
    docs.push(
      `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: svc${i}}
spec: {ports: [{port: 8080, protocol: http}]}`,
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: svc${i}-split}
spec:
  parentRefs: [{kind: Service, name: svc${i}}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /v2}}]
      filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: slow}}]
      backendRefs: [{name: svc${i}, weight: 90}, {name: ${next}, weight: 10}, {name: api, namespace: shop}]`,
      `apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: svc${i}}
spec: {targetRef: {kind: Service, name: svc${i}}, loadBalancer: {type: Random}}`,
      // A static endpoint besides the proxy's own.
      `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: svc${i}-static, labels: {version: v1}}
spec: {service: svc${i}, address: 127.0.0.1, port: ${20000 + i}}`,
    );
  }
  docs.push(
    `apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: slow}
spec: {delay: {fixedDelay: 1ms}}`,
    `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: api, namespace: shop}
spec: {ports: [{port: 8080, protocol: http}]}`,
    `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-default, namespace: shop}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
  to: [{group: "", kind: Service}]`,
  );
  return docs.join("\n---\n") + "\n";
}

async function until(done: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("a mesh that grows to N Services and proxies and shrinks to nothing leaves no entry behind", async (t) => {
  const h = await startHarness(t);
  const { cp } = h;
  const admin = { server: cp.apiUrl, ca: cp.ca.trustBundlePem, token: cp.adminToken };
  await callApi(admin, "POST", "/api/v1/apply", meshYaml());
  await until(() => cp.state.prepared().index.services.size === N + 1, "the mesh");

  // Half the proxies unscoped (a view shared per namespace), half scoped to two Services.
  const proxies = await Promise.all(
    Array.from({ length: N }, (_, i) =>
      h.open(`svc${i}`, i % 2 === 0 ? {} : { reach: [`svc${(i + 3) % N}`, "api.shop"] }),
    ),
  );
  await Promise.all(proxies.map((p) => p.next((m) => m.type === "snapshot")));
  const grown = cp.state.prepared().sizes();
  assert.equal(cp.snapshots.size, N);
  assert.equal(cp.stream.sessions().length, N);
  assert.ok(grown.clusters >= N && grown.routeTables >= N && grown.outbound >= N);
  assert.equal(grown.routes, N);
  assert.equal(grown.policies, N);

  // Every proxy leaves (bye: its Workload goes now), then every resource is deleted.
  for (const p of proxies) p.send({ type: "bye" });
  await Promise.all(proxies.map((p) => p.closed));
  for (const kind of [
    "httproutes",
    "trafficpolicies",
    "workloads",
    "services",
    "faultinjections",
    "referencegrants",
  ]) {
    const { items } = await callApi<{ items: { metadata: { name: string; namespace: string } }[] }>(
      admin,
      "GET",
      `/api/v1/resources/${kind}`,
    );
    for (const r of items)
      await callApi(admin, "DELETE", `/api/v1/resources/${kind}/${r.metadata.namespace}/${r.metadata.name}`);
  }
  await until(() => Object.keys(cp.state.counts()).length === 0, "every resource gone");
  await until(() => cp.stream.sessions().length === 0 && cp.snapshots.size === 0, "every session gone");

  const sizes = cp.state.prepared().sizes();
  for (const [name, n] of Object.entries(sizes)) assert.equal(n, 0, `${name} still holds ${n} entries`);
  assert.equal(cp.state.state().workloads.length, 0);
  const admission = cp.stream.admission.stats;
  assert.equal(admission.queued + admission.running, 0);
});
