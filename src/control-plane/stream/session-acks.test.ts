// The protocol session reads the snapshot cache and keeps the ACK/NACK books: what a proxy receives
// is the cache's snapshot for it (the session compiles nothing), an ACK records the version sent
// with the ACKed nonce — not whatever version the proxy claims — and a NACK of the current nonce
// records the reason against the version sent, while the previous ACK stays. After an ACK the next
// push is a delta from the ACKed version; a NACKed delta is answered with the whole snapshot, a
// NACKed whole snapshot is not resent.

import assert from "node:assert/strict";
import { test } from "node:test";
import { resourceKey } from "../../model/resources.ts";
import type { DeltaMessage, SnapshotMessage } from "../../model/stream-protocol.ts";
import { serviceJson, startHarness } from "../../../test/helpers/stream-client.ts";
import { waitUntil } from "../../../test/helpers/mesh.ts";

test("a session sends the cache's snapshot and books ACKs and NACKs by nonce", async (t) => {
  const h = await startHarness(t);
  const p = await h.open("web");
  const first = (await p.next((m) => m.type === "snapshot")) as SnapshotMessage;
  assert.equal(first.version, h.cp.snapshots.get("default/web-1")?.version, "the cache's snapshot");
  const [session] = h.cp.stream.sessions();

  // An ACK of an old nonce, or one claiming another version, books the version sent with the nonce.
  p.send({ type: "ack", nonce: first.nonce + 7, version: first.version });
  p.send({ type: "ack", nonce: first.nonce, version: "whatever-i-like" });
  await waitUntil(() => session.ackedVersion !== undefined, 5000, "the ACK");
  assert.equal(session.ackedVersion, first.version);

  // The mesh changes: the cache compiles a new version and the session pushes it.
  await h.store.put(resourceKey("Service", "default", "shop"), serviceJson("shop"));
  const second = (await p.next((m) => m.type === "delta" && m.nonce > first.nonce)) as DeltaMessage;
  assert.equal(second.version, h.cp.snapshots.get("default/web-1")?.version);
  assert.equal(second.base, first.version, "a delta from what the proxy ACKed");
  assert.deepEqual(Object.keys(second.outbound), ["shop.default"], "only what changed");
  p.send({ type: "nack", nonce: second.nonce, version: second.version, error: "base mismatch" });
  await waitUntil(() => session.lastNack !== undefined, 5000, "the NACK");
  assert.equal(session.lastNack, "base mismatch");
  assert.equal(session.lastNackVersion, second.version);
  assert.equal(session.ackedVersion, first.version, "still running the version it ACKed");
  // A NACKed delta: the proxy's state is unknown, so the same version comes again, whole.
  const third = (await p.next((m) => m.type !== "error" && m.nonce > second.nonce)) as SnapshotMessage;
  assert.equal(third.type, "snapshot");
  assert.equal(third.version, second.version);
  assert.ok(third.snapshot.outbound["shop.default"]);
  assert.ok(third.resources?.outbound["shop.default"], "with its entries' versions");
  // A NACKed whole snapshot is not resent (it would be refused again).
  p.send({ type: "nack", nonce: third.nonce, version: third.version, error: "outbound listener: boom" });
  const sent = session.pushes.sent;
  await waitUntil(() => session.lastNack === "outbound listener: boom", 5000, "the second NACK");
  // The resend of a NACKed delta happens as the NACK is read; none came for this one.
  assert.equal(session.pushes.sent, sent);
  p.send({ type: "bye" });
  await p.closed;
});
