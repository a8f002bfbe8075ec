// The per-proxy snapshot cache over a real store and mesh state: a change reaches every proxy it
// changes, as a new version; a compile that changes nothing for a proxy answers nothing; a proxy
// nobody is waiting for is not compiled for at each change, but once, when asked; a snapshot the
// compiler got wrong is logged as a bug and never handed out.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { resourceKey, type Workload } from "../../model/resources.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { openEmbeddedStore } from "../../store/embedded/index.ts";
import { compileSnapshot } from "../compile/compile.ts";
import { MeshStateCache } from "../mesh-state.ts";
import { proxyKey, SnapshotCache } from "./snapshot-cache.ts";

async function setUp(t: TestContext, opts: { compile?: typeof compileSnapshot } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "weft-snapcache-"));
  const store = await openEmbeddedStore(join(dir, "store"));
  const state = new MeshStateCache(store);
  await state.start();
  const logs: string[] = [];
  const cache = new SnapshotCache({ state, debounceMs: 1, log: (m) => logs.push(m), ...opts });
  t.after(async () => {
    cache.stop();
    state.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const putService = (name: string, port = 8080) =>
    store.put(
      resourceKey("Service", "default", name),
      JSON.stringify({
        apiVersion: "weft.dev/v1alpha1",
        kind: "Service",
        metadata: { name, namespace: "default" },
        spec: { ports: [{ port, protocol: "http" }] },
      }),
    );
  /** Registers a proxy of `service` reaching `reach`; returns its key. */
  const node = (service: string, reach?: string[]) => {
    const key = proxyKey("default", `${service}-1`);
    t.after(cache.setNode(key, { workload: workload(service), appPort: 8080, reach }));
    return key;
  };
  /** The next version of `key` after `known`. */
  const next = (key: string, known: string | undefined) =>
    new Promise<ProxySnapshot>((resolve) => cache.watch(key, known, resolve));
  return { cache, logs, putService, node, next };
}

function workload(service: string): Workload {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Workload",
    metadata: { name: `${service}-1`, namespace: "default", labels: {} },
    spec: {
      service,
      address: "127.0.0.1",
      port: 15006,
      identity: `spiffe://weft.local/ns/default/sa/${service}`,
    },
  };
}

test("two proxies: a change reaches both as new versions; a proxy it does not change hears nothing", async (t) => {
  const { cache, putService, node, next } = await setUp(t);
  const web = node("web", ["api", "shop"]);
  const api = node("api", ["shop"]);
  const lone = node("lone", ["nothing-here"]);
  const [web1, api1, lone1] = await Promise.all([
    next(web, undefined),
    next(api, undefined),
    next(lone, undefined),
  ]);
  assert.equal(web1.proxy.workload, "web-1");
  assert.equal(api1.proxy.workload, "api-1");

  let loneHeard: ProxySnapshot | undefined;
  cache.watch(lone, lone1.version, (s) => (loneHeard = s));
  const compiledBefore = cache.compiled;
  const changes = Promise.all([next(web, web1.version), next(api, api1.version)]);
  await putService("shop");
  const [web2, api2] = await changes;
  assert.notEqual(web2.version, web1.version);
  assert.notEqual(api2.version, api1.version);
  assert.ok(web2.outbound["shop.default"] && api2.outbound["shop.default"], "both reach the new service");
  // The lone proxy was waiting too, but its snapshot does not use shop: it is not compiled at all.
  assert.equal(cache.compiled - compiledBefore, 2);
  assert.equal(loneHeard, undefined, "an unchanged compile answers nothing");
  assert.equal(cache.get(lone)?.version, lone1.version);
  // The very same snapshot: not compiled again, and no piece of it encoded again (compile/piece.ts).
  assert.equal(cache.get(lone), lone1);
});

test("a proxy nobody waits for is compiled once when asked, not at every change", async (t) => {
  const { cache, putService, node, next } = await setUp(t);
  const web = node("web");
  const first = await next(web, undefined);
  const waiter = node("waiter");
  let v = (await next(waiter, undefined)).version;
  const compiledBefore = cache.compiled;
  for (let i = 0; i < 5; i++) {
    // Only the waiter waits; each change is awaited through it.
    const changed = next(waiter, v);
    await putService(`svc-${i}`);
    v = (await changed).version;
  }
  assert.equal(cache.compiled - compiledBefore, 5, "only the waiting proxy was compiled for");
  assert.equal(cache.deferred(web), 5, "web's changes were coalesced");
  const newest = await next(web, first.version);
  assert.equal(cache.compiled - compiledBefore, 6, "one compile of the newest state");
  assert.deepEqual(
    Object.keys(newest.outbound).filter((k) => k.startsWith("svc-")),
    ["svc-0.default", "svc-1.default", "svc-2.default", "svc-3.default", "svc-4.default"],
  );
});

test("a proxy that already runs the current version is not answered; releasing the last holder drops the entry", async (t) => {
  const { cache, node, next } = await setUp(t);
  const web = node("web");
  const current = await next(web, undefined);
  let heard = false;
  const cancel = cache.watch(web, current.version, () => (heard = true));
  assert.equal(heard, false);
  cancel();
  const key = proxyKey("default", "other-1");
  const release = cache.setNode(key, { workload: workload("other"), appPort: 8080 });
  assert.equal(cache.get(key), undefined, "compiled only once someone asks");
  const size = cache.size;
  release();
  release();
  assert.equal(cache.size, size - 1);
});

test("a compiled snapshot that fails the consistency check is a bug: logged, not stored, not sent", async (t) => {
  let broken = false;
  const { cache, logs, putService, node, next } = await setUp(t, {
    compile: (state, req, prepared) => {
      const s = compileSnapshot(state, req, prepared);
      if (!broken) return s;
      return { ...s, version: `${s.version}-bad`, inbound: { ...s.inbound, appPort: 0 } };
    },
  });
  const web = node("web");
  const good = await next(web, undefined);
  broken = true;
  let sent: ProxySnapshot | undefined;
  cache.watch(web, good.version, (s) => (sent = s));
  await putService("shop");
  await waitFor(() => cache.inconsistent > 0);
  assert.equal(sent, undefined);
  assert.equal(cache.get(web)?.version, good.version, "the last good snapshot stays");
  assert.match(
    logs.join("\n"),
    /BUG: compiled an inconsistent snapshot for default\/web-1, not sent: inbound\.appPort/,
  );
});

/** Resolves once `check` holds, checking after each turn of the event loop. */
async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}
