// A proxy's registration against a real store, without a stream: the hello becomes a Workload under a
// lease; status reported while it is being stored rides with it; a workload name another service
// holds is refused; after the stream closed nothing is written, and bye revokes the lease at once.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { resourceKey, type Workload } from "../../model/resources.ts";
import type { HelloMessage } from "../../model/stream-protocol.ts";
import { openEmbeddedStore } from "../../store/embedded/index.ts";
import type { Store } from "../../store/store.ts";
import { Registration, type Peer } from "./registration.ts";

async function openStore(t: TestContext): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), "weft-registration-"));
  const store = await openEmbeddedStore(join(dir, "store"));
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

const peer = (service: string): Peer => ({
  id: `spiffe://weft.local/ns/default/sa/${service}`,
  namespace: "default",
  service,
});
const hello = (workload: string, extra: Partial<HelloMessage> = {}): HelloMessage => ({
  type: "hello",
  workload,
  address: "127.0.0.1",
  port: 15006,
  appPort: 8080,
  ...extra,
});

function registration(store: Store, service: string, over = () => false) {
  const failures: string[] = [];
  const r = new Registration({
    peer: peer(service),
    store,
    graceSeconds: 30,
    isOver: over,
    fail: (code, message) => failures.push(`${code}: ${message}`),
  });
  return { r, failures };
}

async function stored(store: Store, name: string) {
  const kv = await store.get(resourceKey("Workload", "default", name));
  return kv && { workload: JSON.parse(kv.value) as Workload, lease: kv.lease };
}

test("a hello becomes a Workload under a lease, with the status reported while it was stored", async (t) => {
  const store = await openStore(t);
  const { r, failures } = registration(store, "web");
  const registering = r.register(hello("web-1", { serving: false, zone: "z1" }));
  r.recordHealth({ type: "health", healthy: false, detail: "GET /healthz: 503" });
  const w = await registering;
  assert.ok(w && !("code" in w));
  const kv = await stored(store, "web-1");
  assert.ok(kv?.lease, "under a lease");
  assert.equal(kv.workload.spec.identity, "spiffe://weft.local/ns/default/sa/web");
  assert.equal(kv.workload.spec.zone, "z1");
  assert.deepEqual(
    { serving: kv.workload.status?.serving, health: kv.workload.status?.health },
    { serving: false, health: "Unhealthy" },
  );
  await r.deregister();
  assert.equal(await stored(store, "web-1"), undefined, "bye revokes the lease at once");
  assert.deepEqual(failures, []);
});

test("a hello is refused when it is malformed or names another service's workload", async (t) => {
  const store = await openStore(t);
  assert.deepEqual(await registration(store, "web").r.register(hello("api-1")), {
    code: "bad_hello",
    message: 'hello.workload must start with "web-"',
  });
  // "web-api-1" is a valid name for service web, and for service "web-api": whoever holds it keeps it.
  await registration(store, "web-api").r.register(hello("web-api-1"));
  const refused = await registration(store, "web").r.register(hello("web-api-1"));
  assert.deepEqual(refused, { code: "forbidden", message: "workload web-api-1 belongs to another service" });
  assert.equal((await stored(store, "web-api-1"))?.workload.spec.service, "web-api");
});

test("after the stream closed, nothing more is written: no status, no refresh", async (t) => {
  const store = await openStore(t);
  const { r } = registration(store, "web");
  await r.register(hello("web-1"));
  r.closed();
  r.recordHealth({ type: "health", healthy: false });
  r.refresh();
  // Let the status chain run, then a write the store orders after anything it issued.
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await store.put("/marker", "x");
  assert.equal((await stored(store, "web-1"))?.workload.status, undefined);
  // A registration whose stream is already over stores nothing at all.
  const gone = registration(store, "web", () => true);
  assert.equal(await gone.r.register(hello("web-2")), undefined);
  assert.equal(await stored(store, "web-2"), undefined);
});
