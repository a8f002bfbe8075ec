// Kill -9 a real writer process at assorted moments, then check that every acknowledged write survived.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { openEmbeddedStore } from "./index.ts";
import { tempDir } from "./testdata/helpers.ts";

const writerScript = fileURLToPath(new URL("./testdata/crash-writer.ts", import.meta.url));

interface Ack {
  key: string;
  revision: number;
}

/** Runs the writer and SIGKILLs it once it has acknowledged killAfterAcks writes (plus killDelayMs). */
function runAndKill(dir: string, tag: string, inflight: number, killAfterAcks: number, killDelayMs: number) {
  return new Promise<Ack[]>((resolve, reject) => {
    const child = spawn(process.execPath, [writerScript, dir, tag, String(inflight), "64"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const acks: Ack[] = [];
    let pending = "";
    let stderr = "";
    let killing = false;
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? ""; // only complete lines count
      for (const line of lines) {
        const [word, key, rev] = line.split(" ");
        if (word === "ack") acks.push({ key, revision: Number(rev) });
      }
      if (!killing && acks.length >= killAfterAcks) {
        killing = true;
        setTimeout(() => child.kill("SIGKILL"), killDelayMs);
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`writer exited early (code ${code}): ${stderr}`));
      else resolve(acks);
    });
  });
}

test("every acknowledged write survives kill -9 at random moments", { timeout: 60_000 }, async (t) => {
  const dir = path.join(await tempDir(t), "data");
  // [writes in flight, acks before the kill, extra delay in ms]: sequential and group-committed writers,
  // killed right after an ack or a little later (likely mid-batch or mid-compaction, every 64 records).
  const runs: Array<[number, number, number]> = [
    [1, 1, 0],
    [1, 150, Math.random() * 5],
    [16, 300, 0],
    [16, 500, Math.random() * 10],
    [4, 200, Math.random() * 20],
  ];
  const acked = new Map<string, number>();
  let lastRevision = 0;
  for (const [i, [inflight, killAfter, delay]] of runs.entries()) {
    const acks = await runAndKill(dir, `run${i}`, inflight, killAfter, delay);
    assert.ok(acks.length >= killAfter, `run ${i}: expected at least ${killAfter} acks, got ${acks.length}`);
    for (const a of acks) acked.set(a.key, a.revision);

    const store = await openEmbeddedStore(dir);
    try {
      const { kvs, revision } = await store.range("");
      const byKey = new Map(kvs.map((kv) => [kv.key, kv]));
      for (const [key, rev] of acked) {
        const kv = byKey.get(key);
        assert.ok(kv, `run ${i}: acknowledged ${key} (revision ${rev}) is missing`);
        assert.equal(kv.modRevision, rev, `run ${i}: ${key} has the wrong revision`);
        assert.equal(kv.value, `v${Number(key.split("/")[1])}`);
      }
      assert.ok(revision >= Math.max(...acks.map((a) => a.revision)), `run ${i}: revision went backwards`);
      assert.ok(revision >= lastRevision);
      assert.ok(kvs.every((kv) => kv.modRevision <= revision && kv.createRevision <= kv.modRevision));
      // The recovered store accepts writes at the next revision.
      assert.equal((await store.put(`run${i}/after`, "x")).revision, revision + 1);
      lastRevision = revision + 1;
    } finally {
      await store.close();
    }
    t.diagnostic(`run ${i}: ${acks.length} acks, store at revision ${lastRevision}`);
  }
});
