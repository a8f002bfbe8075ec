import assert from "node:assert/strict";
import { test } from "node:test";
import { openEmbeddedStore } from "./index.ts";
import { ManualClock } from "./testdata/manual-clock.ts";
import { nextEvents, tempDir } from "./testdata/helpers.ts";

test("a lease expires after its TTL and deletes its keys at one new revision", async (t) => {
  const clock = new ManualClock();
  const store = await openEmbeddedStore(await tempDir(t), { clock });
  t.after(() => store.close());

  const lease = await store.leaseGrant(10);
  assert.deepEqual(lease, { id: 1, ttl: 10 });
  assert.equal(store.revision(), 0, "granting a lease is not a key revision");
  await store.put("proxy/a", "x", { lease: lease.id });
  await store.put("proxy/b", "y", { lease: lease.id });
  await store.put("static", "z");
  assert.equal((await store.get("proxy/a"))?.lease, lease.id);

  clock.advance(9_999);
  const deleted = nextEvents(store);
  assert.equal((await store.range("proxy/")).kvs.length, 2);
  clock.advance(1);
  const { events, revision } = await deleted;
  assert.equal(revision, 4);
  assert.deepEqual(
    events.map((e) => [e.type, e.kv.key, e.prevKv?.value]),
    [
      ["delete", "proxy/a", "x"],
      ["delete", "proxy/b", "y"],
    ],
  );
  assert.deepEqual(
    (await store.range("")).kvs.map((kv) => kv.key),
    ["static"],
  );
  await assert.rejects(store.leaseKeepAlive(lease.id), { code: "lease_not_found" });
  await assert.rejects(store.put("proxy/c", "late", { lease: lease.id }), { code: "lease_not_found" });
});

test("keep-alive restarts the full TTL", async (t) => {
  const clock = new ManualClock();
  const store = await openEmbeddedStore(await tempDir(t), { clock });
  t.after(() => store.close());
  const { id } = await store.leaseGrant(5);
  await store.put("k", "v", { lease: id });

  clock.advance(4_000);
  assert.deepEqual(await store.leaseKeepAlive(id), { ttl: 5 });
  clock.advance(4_000);
  assert.deepEqual(await store.leaseKeepAlive(id), { ttl: 5 });
  clock.advance(4_999);
  assert.ok(await store.get("k"));
  const gone = nextEvents(store);
  clock.advance(1);
  assert.equal((await gone).events[0].type, "delete");
  assert.equal(await store.get("k"), undefined);
});

test("revoke deletes the lease's keys; a key re-put without the lease is detached", async (t) => {
  const clock = new ManualClock();
  const store = await openEmbeddedStore(await tempDir(t), { clock });
  t.after(() => store.close());
  const { id } = await store.leaseGrant(60);
  await store.put("a", "1", { lease: id });
  await store.put("b", "1", { lease: id });
  await store.put("b", "2"); // no longer attached

  await store.leaseRevoke(id);
  assert.equal(store.revision(), 4);
  assert.deepEqual(
    (await store.range("")).kvs.map((kv) => [kv.key, kv.lease]),
    [["b", 0]],
  );
  await assert.rejects(store.leaseRevoke(id), { code: "lease_not_found" });
  await assert.rejects(store.leaseKeepAlive(id), { code: "lease_not_found" });
  assert.equal(clock.pending, 0, "no timer left for a revoked lease");

  // A lease without keys revokes without a revision.
  const empty = await store.leaseGrant(60);
  await store.leaseRevoke(empty.id);
  assert.equal(store.revision(), 4);
});

for (const compactEvery of [10_000, 2]) {
  test(`leases survive a restart with a fresh TTL (compactEvery ${compactEvery})`, async (t) => {
    const dir = await tempDir(t);
    const clock = new ManualClock();
    const first = await openEmbeddedStore(dir, { clock, compactEvery });
    const kept = await first.leaseGrant(30);
    const revoked = await first.leaseGrant(30);
    await first.leaseRevoke(revoked.id);
    await first.put("proxy/a", "x", { lease: kept.id });
    clock.advance(25_000); // 5 s left before the restart...
    await first.close();

    const store = await openEmbeddedStore(dir, { clock, compactEvery });
    t.after(() => store.close());
    assert.equal((await store.get("proxy/a"))?.lease, kept.id);
    await assert.rejects(store.leaseKeepAlive(revoked.id), { code: "lease_not_found" });
    // ...but after it the lease starts over with its full 30 s.
    clock.advance(29_999);
    assert.ok(await store.get("proxy/a"));
    const gone = nextEvents(store);
    clock.advance(1);
    assert.deepEqual(
      (await gone).events.map((e) => [e.type, e.kv.key]),
      [["delete", "proxy/a"]],
    );
    // Lease ids are never reused, even those of revoked leases.
    assert.equal((await store.leaseGrant(5)).id, revoked.id + 1);
  });
}

test("an expired lease whose deletion was written stays gone after restart", async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock();
  const first = await openEmbeddedStore(dir, { clock });
  const { id } = await first.leaseGrant(1);
  await first.put("k", "v", { lease: id });
  const gone = nextEvents(first);
  clock.advance(1_000);
  await gone;
  await first.close();

  const store = await openEmbeddedStore(dir, { clock });
  t.after(() => store.close());
  assert.equal(await store.get("k"), undefined);
  await assert.rejects(store.leaseKeepAlive(id), { code: "lease_not_found" });
  assert.equal(clock.pending, 0);
});
