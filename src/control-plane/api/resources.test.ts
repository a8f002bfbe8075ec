import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resourceKey, type Workload } from "../../model/resources.ts";
import { openEmbeddedStore } from "../../store/embedded/index.ts";
import { applyManifests } from "./resources.ts";
import { ApiError } from "./http.ts";

const WORKLOAD = `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: db-1}
spec: {service: db, address: 10.0.0.7, port: 5432}
`;

test("re-applying a resource keeps the status weft wrote; an applied status is refused", async () => {
  const store = await openEmbeddedStore(join(mkdtempSync(join(tmpdir(), "weft-api-")), "store"));
  try {
    const key = resourceKey("Workload", "default", "db-1");
    await applyManifests(store, [{ name: "db.yaml", content: WORKLOAD }]);

    // The control plane records the workload's health, as it does from a sidecar's report.
    const stored = JSON.parse((await store.get(key))!.value) as Workload;
    const status = { health: "Unhealthy", detail: "connect: refused", since: "2026-01-01T00:00:00Z" };
    await store.put(key, JSON.stringify({ ...stored, status }));

    // Same spec: nothing to write, status untouched.
    let out = await applyManifests(store, [{ name: "db.yaml", content: WORKLOAD }]);
    assert.equal(out.results[0].action, "unchanged");
    // Changed spec: written, status still there.
    out = await applyManifests(store, [{ name: "db.yaml", content: WORKLOAD.replace("5432", "5433") }]);
    assert.equal(out.results[0].action, "configured");
    const after = JSON.parse((await store.get(key))!.value) as Workload;
    assert.equal(after.spec.port, 5433);
    assert.deepEqual(after.status, status);

    // A file that carries a status (e.g. edited `weft get -o yaml` output) is rejected as a whole.
    const withStatus = `${WORKLOAD}status: {health: Healthy, since: "2026-01-02T00:00:00Z"}\n`;
    await assert.rejects(
      applyManifests(store, [{ name: "db.yaml", content: withStatus }]),
      (err: unknown) => {
        assert.ok(err instanceof ApiError);
        assert.equal(err.status, 422);
        return true;
      },
    );
    assert.deepEqual((JSON.parse((await store.get(key))!.value) as Workload).status, status);
  } finally {
    await store.close();
  }
});
