import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resourceKey, type FaultInjection, type TrafficPolicy, type Workload } from "../model/resources.ts";
import type { ProxySnapshot } from "../model/snapshot.ts";
import { openEmbeddedStore } from "../store/embedded/index.ts";
import { MeshStateCache } from "./mesh-state.ts";
import { StaticHealth } from "./static-health.ts";
import { proxyKey, SnapshotCache } from "./stream/snapshot-cache.ts";

const policy: TrafficPolicy = {
  apiVersion: "weft.dev/v1alpha1",
  kind: "TrafficPolicy",
  metadata: { name: "reviews", namespace: "default" },
  spec: { targetRef: { kind: "Service", name: "reviews" }, loadBalancer: { type: "Random" } },
};
const fault: FaultInjection = {
  apiVersion: "weft.dev/v1alpha1",
  kind: "FaultInjection",
  metadata: { name: "slow", namespace: "default" },
  spec: { delay: { fixedDelay: "1s" } },
};

test("TrafficPolicies and FaultInjections reach the compiler's state, at start and through the watch", async () => {
  const store = await openEmbeddedStore(join(mkdtempSync(join(tmpdir(), "weft-state-")), "store"));
  const cache = new MeshStateCache(store);
  try {
    await store.put(resourceKey("TrafficPolicy", "default", "reviews"), JSON.stringify(policy));
    await cache.start();
    assert.deepEqual(
      cache.state().trafficPolicies.map((p) => p.spec.loadBalancer?.type),
      ["Random"],
    );
    assert.deepEqual(cache.state().faultInjections, []);

    const changed = new Promise<void>((resolve) => cache.onChange(() => resolve()));
    await store.put(resourceKey("FaultInjection", "default", "slow"), JSON.stringify(fault));
    await changed;
    assert.deepEqual(
      cache.state().faultInjections.map((f) => f.metadata.name),
      ["slow"],
    );
    // Kinds stay apart: a policy is not mistaken for a route or a fault.
    assert.equal(cache.state().routes.length, 0);
    assert.equal(cache.state().trafficPolicies.length, 1);
  } finally {
    cache.stop();
    await store.close();
  }
});

function workload(name: string, service: string, port = 8080): Workload {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Workload",
    metadata: { name, namespace: "default", labels: {} },
    spec: { service, address: "127.0.0.1", port },
  };
}

test("a change to one of 5000 resources costs that change: no list of the mesh is rebuilt, one cluster recompiled", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "weft-state-"));
  const store = await openEmbeddedStore(join(dir, "store"));
  const state = new MeshStateCache(store);
  const cache = new SnapshotCache({ state, debounceMs: 1 });
  const health = new StaticHealth({ store, state });
  t.after(async () => {
    health.stop();
    cache.stop();
    state.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // 50 Services of 100 static Workloads each, in one transaction.
  const all = Array.from({ length: 5000 }, (_, i) => workload(`w${i}`, `svc${i % 50}`));
  await store.txn({
    compares: [],
    success: all.map((w) => ({
      type: "put" as const,
      key: resourceKey("Workload", "default", w.metadata.name),
      value: JSON.stringify(w),
    })),
  });
  await state.start();
  health.start();
  const key = proxyKey("default", "w0");
  t.after(cache.setNode(key, { workload: all[0], appPort: 8080, reach: ["svc1", "svc2"] }));
  const next = (known: string | undefined) =>
    new Promise<ProxySnapshot>((resolve) => cache.watch(key, known, resolve));
  const first = await next(undefined);
  assert.equal(first.clusters["svc1.default"].endpoints.length, 100);

  const listed = state.listed;
  const { clusters } = state.prepared().recomputed;
  // One Workload of svc1 moves to another port: svc1's cluster changes, nothing else.
  const changed = next(first.version);
  await store.put(resourceKey("Workload", "default", "w1"), JSON.stringify(workload("w1", "svc1", 9090)));
  const second = await changed;
  assert.ok(second.clusters["svc1.default"].endpoints.some((e) => e.port === 9090));
  assert.equal(state.listed, listed, "no per-kind list of the 5000 resources was made again");
  assert.equal(state.prepared().recomputed.clusters, clusters + 1, "svc1's cluster only");
  assert.equal(second.clusters["svc2.default"], first.clusters["svc2.default"], "svc2's is the same piece");
  // The lists still answer, made once per read after a change of their kind.
  assert.equal(state.state().workloads.length, 5000);
  assert.equal(state.listed, listed + 5000);
  assert.equal((state.get("Workload", "default", "w1") as Workload).spec.port, 9090);
});
