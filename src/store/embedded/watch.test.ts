import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { test } from "node:test";
import type { StoreError, WatchEvent } from "../store.ts";
import { openEmbeddedStore } from "./index.ts";
import { tempDir, tick } from "./testdata/helpers.ts";

/** Collects what a watch delivers: [revision, "type key=value"...] per call. */
function recorder() {
  const calls: Array<[number, string[]]> = [];
  const errors: StoreError[] = [];
  const listener = (events: WatchEvent[], revision: number) => {
    calls.push([revision, events.map((e) => `${e.type} ${e.kv.key}=${e.kv.value}`)]);
  };
  return { calls, errors, listener, onError: (err: StoreError) => errors.push(err) };
}

test("watch from a past revision replays history, then follows live changes, filtered by prefix", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t));
  t.after(() => store.close());
  await store.put("svc/a", "1"); // 1
  await store.put("other", "1"); // 2
  await store.txn({
    success: [
      { type: "put", key: "svc/b", value: "1" },
      { type: "put", key: "svc/c", value: "1" },
    ],
  }); // 3
  await store.delete("svc/a"); // 4

  const r = recorder();
  store.watch("svc/", r.listener, { fromRevision: 2, onError: r.onError });
  assert.deepEqual(r.calls, [], "catch-up starts after watch() returns");
  await tick();
  assert.deepEqual(r.calls, [
    [3, ["put svc/b=1", "put svc/c=1"]],
    [4, ["delete svc/a="]],
  ]);

  await store.put("other", "2");
  await store.put("svc/b", "2");
  assert.deepEqual(r.calls.at(-1), [6, ["put svc/b=2"]]);
  assert.equal(r.calls.length, 3);
  assert.deepEqual(r.errors, []);
});

test("delete events carry the previous value; put events the previous version", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t));
  t.after(() => store.close());
  const seen: WatchEvent[] = [];
  store.watch("", (events) => seen.push(...events));
  await store.put("k", "v1");
  await store.put("k", "v2");
  await store.delete("k");
  assert.equal(seen.length, 3);
  assert.equal(seen[0].prevKv, undefined);
  assert.equal(seen[1].prevKv?.value, "v1");
  assert.deepEqual(seen[2].kv, {
    key: "k",
    value: "",
    createRevision: 0,
    modRevision: 3,
    version: 0,
    lease: 0,
  });
  assert.equal(seen[2].prevKv?.value, "v2");
  assert.equal(seen[2].prevKv?.version, 2);
});

test("a revision older than the kept history fails the watch with 'compacted'", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t), { historyLimit: 5 });
  t.after(() => store.close());
  for (let i = 1; i <= 10; i++) await store.put(`k${i}`, String(i));

  const old = recorder();
  store.watch("", old.listener, { fromRevision: 5, onError: old.onError });
  const kept = recorder();
  store.watch("", kept.listener, { fromRevision: 6, onError: kept.onError });
  await tick();

  assert.deepEqual(old.calls, []);
  assert.equal(old.errors.length, 1);
  assert.equal(old.errors[0].code, "compacted");
  assert.deepEqual(
    kept.calls.map(([rev]) => rev),
    [6, 7, 8, 9, 10],
  );
  assert.deepEqual(kept.errors, []);
});

test("after a restart, history starts at the recovered revision", async (t) => {
  const dir = await tempDir(t);
  const first = await openEmbeddedStore(dir);
  await first.put("a", "1");
  await first.put("a", "2");
  await first.close();

  const store = await openEmbeddedStore(dir);
  t.after(() => store.close());
  const past = recorder();
  store.watch("", past.listener, { fromRevision: 2, onError: past.onError });
  const next = recorder();
  store.watch("", next.listener, { fromRevision: 3, onError: next.onError });
  await tick();
  await store.put("a", "3");
  assert.equal(past.errors[0]?.code, "compacted");
  assert.deepEqual(next.calls, [[3, ["put a=3"]]]);
});

test("a throwing listener is reported and does not disturb the store or other watchers", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t));
  t.after(() => store.close());
  const reported: unknown[] = [];
  const onReport = (msg: unknown) => reported.push((msg as { error: unknown }).error);
  subscribe("weft:store:watch-listener-error", onReport);
  t.after(() => unsubscribe("weft:store:watch-listener-error", onReport));

  store.watch("", () => {
    throw new Error("listener bug");
  });
  const good = recorder();
  store.watch("", good.listener);
  assert.equal((await store.put("a", "1")).revision, 1);
  assert.equal((await store.put("b", "1")).revision, 2);
  assert.deepEqual(
    good.calls.map(([rev]) => rev),
    [1, 2],
  );
  assert.equal(reported.length, 2);
  assert.equal((reported[0] as Error).message, "listener bug");
});

test("cancel stops delivery; close ends watches with 'closed'", async (t) => {
  const store = await openEmbeddedStore(await tempDir(t));
  const cancelled = recorder();
  const w = store.watch("", cancelled.listener, { onError: cancelled.onError });
  const open = recorder();
  store.watch("", open.listener, { onError: open.onError });
  await store.put("a", "1");
  w.cancel();
  await store.put("a", "2");
  await store.close();

  assert.equal(cancelled.calls.length, 1);
  assert.deepEqual(cancelled.errors, []);
  assert.equal(open.calls.length, 2);
  assert.equal(open.errors.length, 1);
  assert.equal(open.errors[0].code, "closed");
});
