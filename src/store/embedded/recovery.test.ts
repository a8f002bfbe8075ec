import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { StoreError } from "../store.ts";
import { encodeFrame } from "./frame.ts";
import { openEmbeddedStore } from "./index.ts";
import { tempDir } from "./testdata/helpers.ts";

const LOG1 = "wal-0000000001.log";

async function storeWithThreeKeys(dir: string): Promise<void> {
  const store = await openEmbeddedStore(dir);
  await store.put("a", "1");
  await store.put("b", "2");
  await store.put("c", "3");
  await store.close();
}

const keys = async (dir: string) => {
  const store = await openEmbeddedStore(dir);
  try {
    return (await store.range("")).kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}`);
  } finally {
    await store.close();
  }
};

const tails: Array<[string, Buffer]> = [
  ["a half-written header", Buffer.from([0x20, 0x00])],
  [
    "a header promising more than was written",
    Buffer.concat([encodeFrame('{"t":"txn"}').subarray(0, 8), Buffer.from("{")]),
  ],
  ["a whole frame with a bad CRC", Buffer.from(encodeFrame('{"t":"txn","rev":4,"ops":[]}').fill(0x55, 4, 8))],
  ["zeros (a size extended without its data)", Buffer.alloc(4096)],
];
for (const [what, garbage] of tails) {
  test(`a torn tail (${what}) is cut off on open`, async (t) => {
    const dir = await tempDir(t);
    await storeWithThreeKeys(dir);
    const log = path.join(dir, LOG1);
    const { size } = await fs.stat(log);
    await fs.appendFile(log, garbage);

    assert.deepEqual(await keys(dir), ["a=1@1", "b=2@2", "c=3@3"]);
    assert.equal((await fs.stat(log)).size, size, "the tail was truncated on disk");

    // Writing after the cut and reopening again works.
    const store = await openEmbeddedStore(dir);
    assert.equal((await store.put("d", "4")).revision, 4);
    await store.close();
    assert.deepEqual(await keys(dir), ["a=1@1", "b=2@2", "c=3@3", "d=4@4"]);
  });
}

test("a damaged record followed by valid ones is 'corrupt', naming the file and offset", async (t) => {
  const dir = await tempDir(t);
  await storeWithThreeKeys(dir);
  const log = path.join(dir, LOG1);
  const buf = await fs.readFile(log);
  const second = 8 + buf.readUInt32LE(0);
  buf[second + 12] ^= 0xff; // a bit flip inside the second record's payload
  await fs.writeFile(log, buf);

  for (let attempt = 0; attempt < 2; attempt++) {
    // The failed open releases its lock: the second attempt fails the same way.
    await assert.rejects(openEmbeddedStore(dir), (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.equal(err.code, "corrupt");
      assert.match(err.message, new RegExp(`${LOG1}: invalid record at offset ${second} `));
      return true;
    });
  }
  assert.equal((await fs.stat(log)).size, buf.length, "nothing was truncated");
});

test("compaction leaves one snapshot and one log; reopening restores state and revisions", async (t) => {
  const dir = await tempDir(t);
  const store = await openEmbeddedStore(dir, { compactEvery: 10 });
  for (let i = 0; i < 35; i++) await store.put(`k${i % 7}`, String(i));
  await store.delete("k0");
  const before = await store.range("");
  await store.close();
  // How many compactions ran depends on timing (one that comes due while another is still writing
  // is skipped), so the log's number does too; what must hold is one snapshot and one log.
  const files = (await fs.readdir(dir)).sort();
  assert.equal(files.length, 2, files.join(", "));
  assert.equal(files[0], "snapshot");
  assert.match(files[1], /^wal-\d{10}\.log$/);
  assert.notEqual(files[1], "wal-0000000001.log", "the log was rotated by compaction");

  const reopened = await openEmbeddedStore(dir, { compactEvery: 10 });
  t.after(() => reopened.close());
  assert.deepEqual(await reopened.range(""), before);
  assert.equal(reopened.revision(), 36);
  assert.equal((await reopened.get("k3"))?.version, 5);
});

test("leftovers of an interrupted compaction are cleaned up on open", async (t) => {
  const dir = await tempDir(t);
  const store = await openEmbeddedStore(dir, { compactEvery: 3 });
  for (let i = 0; i < 4; i++) await store.put(`k${i}`, String(i));
  await store.close();
  assert.deepEqual((await fs.readdir(dir)).sort(), ["snapshot", "wal-0000000002.log"]);

  // Killed during step 2 (half a snapshot.tmp), during step 5 (an old log not yet deleted) and
  // right after step 1 of the next compaction (a new, empty log).
  await fs.writeFile(path.join(dir, "snapshot.tmp"), "half a snaps");
  await fs.writeFile(path.join(dir, LOG1), "stale");
  await fs.writeFile(path.join(dir, "wal-0000000003.log"), "");

  const reopened = await openEmbeddedStore(dir, { compactEvery: 3 });
  assert.deepEqual(
    (await reopened.range("")).kvs.map((kv) => kv.key),
    ["k0", "k1", "k2", "k3"],
  );
  await reopened.put("k4", "4");
  await reopened.close();
  assert.deepEqual((await fs.readdir(dir)).sort(), ["snapshot", "wal-0000000002.log", "wal-0000000003.log"]);
  assert.equal(
    (await fs.stat(path.join(dir, "wal-0000000003.log"))).size > 0,
    true,
    "appends go to the newest log",
  );
  assert.deepEqual(await keys(dir), ["k0=0@1", "k1=1@2", "k2=2@3", "k3=3@4", "k4=4@5"]);
});

test("a missing log between snapshot and newest log is 'corrupt'", async (t) => {
  const dir = await tempDir(t);
  await storeWithThreeKeys(dir);
  await fs.rename(path.join(dir, LOG1), path.join(dir, "wal-0000000002.log"));
  await assert.rejects(openEmbeddedStore(dir), {
    code: "corrupt",
    message: /wal-0000000001\.log is missing/,
  });
});

test("the data directory is locked against a second opener", async (t) => {
  const dir = await tempDir(t);
  const store = await openEmbeddedStore(dir);
  await assert.rejects(openEmbeddedStore(dir), { code: "io", message: /already open in this process/ });
  await store.close();

  // A lock held by another live process blocks.
  await fs.writeFile(path.join(dir, "LOCK"), JSON.stringify({ pid: process.ppid }));
  await assert.rejects(openEmbeddedStore(dir), { code: "io", message: /locked by running process/ });

  // A lock left by a process that died is taken over.
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  await fs.writeFile(path.join(dir, "LOCK"), JSON.stringify({ pid: Number(dead.stdout) }));
  const reopened = await openEmbeddedStore(dir);
  await reopened.close();
  await assert.rejects(fs.access(path.join(dir, "LOCK")), "close removes the lock");
});
