// Issue 6, hole 10: memory of the inbound listener under many short-lived mTLS connections, measured
// in a process of its own (tls-memory.ts). Two bursts: the first raises V8's young generation and the
// allocator's high-water mark (Node's own https server does the same, see docs/proxy.md#memory); the
// second must mostly reuse that memory. Something kept per connection (a SecureContext or TLS session
// per connection, sockets or peers left in a map) grows the second burst as much as the first.

import assert from "node:assert/strict";
import { test } from "node:test";
import { tuneHeapForProxy } from "../agent/heap-tuning.ts";
import { measureTlsMemory } from "./tls-memory.ts";

const MB = 1024 * 1024;

test("two bursts of 500 mTLS connections: the second reuses the first's memory, and the heap comes back", async () => {
  const n = 500;
  const m = await measureTlsMemory({ connections: n, rounds: 2, concurrency: 4, idleMs: 200 });
  assert.equal(m.idle.connections, 0, "every connection closed");
  const heapGrowth = m.idle.heapUsed - m.before.heapUsed;
  assert.ok(heapGrowth < 4 * MB, `heap grew ${(heapGrowth / MB).toFixed(1)} MB`);
  // Measured here: +10 MB for the first burst, +2..10 MB for the second; a SecureContext kept per
  // connection adds ~64 KB per connection (+32 MB) to each.
  const second = m.rounds[1].rss - m.rounds[0].rss;
  assert.ok(second < 20 * MB, `RSS grew ${(second / MB).toFixed(1)} MB over the second ${n} connections`);
  // The sidecar's heap tuning (../agent/heap-tuning.ts) keeps V8's young generation at its initial
  // size: measured +2 MB of V8 heap over the bursts with it, +10 MB without.
  const v8Growth = m.after.heapTotal - m.before.heapTotal;
  assert.ok(v8Growth < 6 * MB, `V8 heap grew ${(v8Growth / MB).toFixed(1)} MB`);
});

test("an operator's own young-generation flags win over the sidecar's heap tuning", () => {
  assert.equal(tuneHeapForProxy("--max-semi-space-size=8", []), false);
  assert.equal(tuneHeapForProxy("", ["--max-semi-space-size=8"]), false);
  assert.equal(tuneHeapForProxy("--max-old-space-size=256", []), true);
});
