// The snapshot cache and on-demand proxies: a subscription change is compiled at once for a waiting
// reader; a Service appearing that a subscription (unresolved, or bare) names is pushed; Services
// nobody subscribed to appearing recompile no on-demand proxy (counted), unlike an unscoped one.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { resourceKey, type Workload } from "../../model/resources.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { openEmbeddedStore } from "../../store/embedded/index.ts";
import { MeshStateCache } from "../mesh-state.ts";
import { proxyKey, SnapshotCache } from "./snapshot-cache.ts";

async function setUp(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "weft-snapsubs-"));
  const store = await openEmbeddedStore(join(dir, "store"));
  const state = new MeshStateCache(store);
  await state.start();
  // A long debounce: a subscription must not wait for it.
  const cache = new SnapshotCache({ state, debounceMs: 1 });
  t.after(async () => {
    cache.stop();
    state.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const putService = (name: string, namespace = "default") =>
    store.put(
      resourceKey("Service", namespace, name),
      JSON.stringify({
        apiVersion: "weft.dev/v1alpha1",
        kind: "Service",
        metadata: { name, namespace },
        spec: { ports: [{ port: 8080, protocol: "http" }] },
      }),
    );
  const node = (service: string, onDemand: boolean) => {
    const key = proxyKey("default", `${service}-1`);
    t.after(
      cache.setNode(key, { workload: workload(service), appPort: 8080, onDemand: onDemand || undefined }),
    );
    return key;
  };
  const next = (key: string, known: string | undefined) =>
    new Promise<ProxySnapshot>((resolve) => cache.watch(key, known, resolve));
  return { cache, putService, node, next };
}

function workload(service: string): Workload {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Workload",
    metadata: { name: `${service}-1`, namespace: "default", labels: {} },
    spec: { service, address: "127.0.0.1", port: 15006 },
  };
}

test("a subscription is answered by the next compile, found or unresolved", async (t) => {
  const { cache, putService, node, next } = await setUp(t);
  await putService("api");
  const web = node("web", true);
  const first = await next(web, undefined);
  assert.deepEqual(Object.keys(first.outbound), []);
  const answered = next(web, first.version);
  cache.setSubscriptions(web, ["api", "ghost"]);
  const second = await answered;
  assert.deepEqual(Object.keys(second.outbound), ["api.default"]);
  assert.deepEqual(second.unresolved, ["ghost"]);
  const dropped = next(web, second.version);
  cache.setSubscriptions(web, ["ghost"]);
  assert.deepEqual(Object.keys((await dropped).outbound), [], "unsubscribed: gone from the snapshot");
});

test("a Service created after the proxy subscribed to its name is pushed; unrelated Services recompile nothing", async (t) => {
  const { cache, putService, node, next } = await setUp(t);
  const web = node("web", true);
  const unscoped = node("old", false);
  let v = (await next(web, undefined)).version;
  const subscribed = next(web, v);
  cache.setSubscriptions(web, ["later", "billing.other"]);
  const s = await subscribed;
  assert.deepEqual(s.unresolved, ["billing.other", "later"]);
  v = s.version;
  let u = (await next(unscoped, undefined)).version;

  // Services nobody subscribed to: the unscoped proxy is compiled for each, the on-demand one never.
  let heard: ProxySnapshot | undefined;
  cache.watch(web, v, (x) => (heard = x));
  for (const name of ["a", "b", "c"]) {
    const changed = next(unscoped, u);
    const before = cache.compiled;
    await putService(name);
    u = (await changed).version;
    assert.equal(cache.compiled - before, 1, `only the unscoped proxy compiled for ${name}`);
  }
  assert.equal(heard, undefined);

  // A Service of a subscribed bare name, in another namespace, and one that a qualified name names.
  const before = cache.compiled;
  const waiting = new Promise<ProxySnapshot>((resolve) => {
    const check = () => (heard ? resolve(heard) : setImmediate(check));
    check();
  });
  await putService("later", "elsewhere");
  const pushed = await waiting;
  assert.deepEqual(Object.keys(pushed.outbound), ["later.elsewhere"], "the only 'later': pushed");
  assert.deepEqual(pushed.unresolved, ["billing.other"]);
  assert.ok(cache.compiled - before >= 1);
  const again = next(web, pushed.version);
  await putService("billing", "other");
  const last = await again;
  assert.deepEqual(Object.keys(last.outbound), ["billing.other", "later.elsewhere"]);
  assert.equal(last.unresolved, undefined);
});
