import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { StoreError } from "../store.ts";
import { openEmbeddedStore } from "./index.ts";
import { tempDir } from "./testdata/helpers.ts";

test("revisions, versions and createRevision follow etcd", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t));
  t.after(() => store.close());
  assert.equal(store.revision(), 0);

  assert.deepEqual(await store.put("a", "1"), { succeeded: true, revision: 1 });
  assert.deepEqual(await store.put("b", "1"), { succeeded: true, revision: 2 });
  // An identical value still writes, bumping revision and version.
  assert.deepEqual(await store.put("a", "1"), { succeeded: true, revision: 3 });
  assert.deepEqual(await store.get("a"), {
    key: "a",
    value: "1",
    createRevision: 1,
    modRevision: 3,
    version: 2,
    lease: 0,
  });

  assert.deepEqual(await store.delete("a"), { succeeded: true, revision: 4, deleted: 1 });
  assert.equal(await store.get("a"), undefined);
  // Deleting a missing key writes nothing.
  assert.deepEqual(await store.delete("a"), { succeeded: false, revision: 4, deleted: 0 });
  assert.equal(store.revision(), 4);

  // Re-created keys start over.
  await store.put("a", "2");
  const a = await store.get("a");
  assert.equal(a?.createRevision, 5);
  assert.equal(a?.version, 1);
});

test("txn compares: missing keys have zero revisions, and the chosen branch applies at one revision", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t));
  t.after(() => store.close());

  const create = (key: string) =>
    store.txn({
      compares: [{ key, target: "createRevision", op: "=", value: 0 }],
      success: [{ type: "put", key, value: "created" }],
      failure: [{ type: "put", key: `${key}.conflicts`, value: "1" }],
    });
  assert.deepEqual(await create("x"), { succeeded: true, revision: 1 });
  assert.deepEqual(await create("x"), { succeeded: false, revision: 2 });
  assert.equal((await store.get("x.conflicts"))?.value, "1");

  const kv = await store.get("x");
  assert.ok(kv);
  const cas = (modRevision: number) =>
    store.txn({
      compares: [
        { key: "x", target: "modRevision", op: "=", value: modRevision },
        { key: "x", target: "exists", value: true },
        { key: "nope", target: "exists", value: false },
        { key: "nope", target: "version", op: "<", value: 1 },
        { key: "x", target: "version", op: ">", value: 0 },
        { key: "x", target: "createRevision", op: "!=", value: 0 },
      ],
      success: [
        { type: "put", key: "x", value: "updated" },
        { type: "put", key: "y", value: "also" },
      ],
    });
  assert.deepEqual(await cas(kv.modRevision), { succeeded: true, revision: 3 });
  assert.equal((await store.get("x"))?.modRevision, 3);
  assert.equal((await store.get("y"))?.modRevision, 3);
  // Stale modRevision: fails, and with no failure branch nothing is written.
  assert.deepEqual(await cas(kv.modRevision), { succeeded: false, revision: 3 });

  // A txn that writes nothing does not bump the revision.
  assert.deepEqual(await store.txn({ success: [] }), { succeeded: true, revision: 3 });
  assert.equal(store.revision(), 3);
});

test("concurrent txns are serialised: each sees the ones before it", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t));
  t.after(() => store.close());
  // 20 racing create-if-absent txns in the same tick: exactly one may win.
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      store.txn({
        compares: [{ key: "leader", target: "exists", value: false }],
        success: [{ type: "put", key: "leader", value: `candidate-${i}` }],
      }),
    ),
  );
  assert.equal(results.filter((r) => r.succeeded).length, 1);
  assert.equal((await store.get("leader"))?.value, "candidate-0");
  assert.equal(store.revision(), 1);
});

test("range is sorted by key and deletePrefix removes exactly the prefix at one revision", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t));
  t.after(() => store.close());
  for (const key of ["svc/b", "svc/a", "svcx", "other", "svc/c"]) await store.put(key, key);

  const range = await store.range("svc/");
  assert.deepEqual(
    range.kvs.map((kv) => kv.key),
    ["svc/a", "svc/b", "svc/c"],
  );
  assert.equal(range.revision, 5);

  const res = await store.txn({
    success: [
      { type: "put", key: "svc/d", value: "new" },
      { type: "deletePrefix", prefix: "svc/" },
      { type: "put", key: "svc/e", value: "after" },
    ],
  });
  assert.equal(res.revision, 6);
  assert.deepEqual(
    (await store.range("")).kvs.map((kv) => kv.key),
    ["other", "svc/e", "svcx"],
  );
  assert.equal((await store.get("svc/e"))?.modRevision, 6);
});

test("a put on an unknown lease fails alone; the rest of its batch commits", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t));
  t.after(() => store.close());
  const [ok, bad, ok2] = await Promise.allSettled([
    store.put("a", "1"),
    store.put("b", "1", { lease: 42 }),
    store.put("c", "1"),
  ]);
  assert.equal(ok.status, "fulfilled");
  assert.equal(ok2.status, "fulfilled");
  assert.equal(bad.status, "rejected");
  assert.ok(bad.reason instanceof StoreError);
  assert.equal(bad.reason.code, "lease_not_found");
  assert.deepEqual(
    (await store.range("")).kvs.map((kv) => [kv.key, kv.modRevision]),
    [
      ["a", 1],
      ["c", 2],
    ],
  );
});

test("state survives reopen, and the closed store refuses work", async (t) => {
  const dir = await tempDir(t);
  const store = await openEmbeddedStore(dir);
  await store.put("a", "1");
  await store.put("a", "2");
  await store.txn({
    success: [
      { type: "put", key: "b", value: "x" },
      { type: "delete", key: "a" },
    ],
  });
  const before = await store.range("");
  await store.close();
  await assert.rejects(store.put("c", "1"), { code: "closed" });
  await assert.rejects(store.get("b"), { code: "closed" });

  const reopened = await openEmbeddedStore(dir);
  t.after(() => reopened.close());
  assert.deepEqual(await reopened.range(""), before);
  assert.equal(reopened.revision(), 3);
  assert.equal((await reopened.put("a", "3")).revision, 4);
  assert.equal((await reopened.get("a"))?.createRevision, 4);
});

test("after a disk error the store refuses writes with 'io' but keeps serving reads", async (t) => {
  const dir = await tempDir(t);
  const store = await openEmbeddedStore(dir, { compactEvery: 2 });
  t.after(() => store.close());
  await store.put("a", "1");
  // Make the next log switch fail: its file name is already taken.
  await fs.writeFile(path.join(dir, "wal-0000000002.log"), "");
  assert.equal((await store.put("b", "1")).revision, 2, "the write itself was durable before the switch");

  await assert.rejects(store.put("c", "1"), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, "io");
    assert.match(err.message, /wal-0000000002\.log/);
    return true;
  });
  await assert.rejects(store.leaseGrant(10), { code: "io" });
  assert.deepEqual(
    (await store.range("")).kvs.map((kv) => kv.key),
    ["a", "b"],
  );
});
