// Admission of new config streams, over real HTTP/2: while the registration slots are taken a new
// stream waits unanswered (no lease, nothing stored); past the queue's bounds it is answered 503
// with Retry-After and an `overloaded` error; a waiting stream gets its turn, and its snapshot, as
// soon as a slot frees.

import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import type { IncomingHttpHeaders } from "node:http2";
import { startHarness } from "../../../test/helpers/stream-client.ts";

test("new streams beyond the slots wait their turn, past the queue's bound get 503 + Retry-After", async (t) => {
  const h = await startHarness(t, {
    streamAdmission: { concurrency: 1, maxQueued: 1, maxQueuedPerIdentity: 1, maxHoldMs: 60_000 },
  });
  const admission = h.cp.stream.admission;
  // The first stream takes the only slot and, saying nothing yet, keeps it.
  const first = await h.open("alpha", null);
  await once(first.stream, "response");
  const waiting = await h.open("beta");
  let answered = false;
  waiting.stream.once("response", () => (answered = true));
  while (admission.stats.queued === 0) await new Promise((r) => setImmediate(r));
  assert.equal(answered, false, "a queued stream is not answered yet");
  assert.equal(await h.workload("beta-1"), undefined, "nothing registered while queued");

  const refused = await h.open("gamma");
  const [headers] = (await once(refused.stream, "response")) as [IncomingHttpHeaders];
  assert.equal(headers[":status"], 503);
  assert.match(String(headers["retry-after"]), /^\d+$/);
  const err = (await refused.next((m) => m.type === "error")) as { code: string; message: string };
  assert.equal(err.code, "overloaded");
  assert.match(err.message, /proxy registration: 1 requests already waiting/);

  // The first proxy says hello: registered, compiled, its turn over — and the waiting one's begins.
  first.send({ type: "hello", workload: "alpha-1", address: "127.0.0.1", port: 15006, appPort: 8080 });
  await first.next((m) => m.type === "snapshot");
  await waiting.next((m) => m.type === "snapshot");
  assert.ok(await h.workload("beta-1"));
  assert.deepEqual(admission.stats.refused, { queue_full: 1, key_queue_full: 0, queue_timeout: 0 });
});
