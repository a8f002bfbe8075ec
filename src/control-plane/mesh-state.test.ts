import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resourceKey, type FaultInjection, type TrafficPolicy } from "../model/resources.ts";
import { openEmbeddedStore } from "../store/embedded/index.ts";
import { MeshStateCache } from "./mesh-state.ts";

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
