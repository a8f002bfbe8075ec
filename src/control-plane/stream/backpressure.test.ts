// Pushes respect the proxy's pace: a proxy that stops reading (a paused reader: it neither reads nor
// answers) is not sent a message per change. The control plane holds at most the one message already
// written, and when the proxy reads and ACKs again it gets one delta from what it holds to the newest
// state — not one per change — which applied in order gives exactly the control plane's snapshot.

import assert from "node:assert/strict";
import { test } from "node:test";
import { resourceKey } from "../../model/resources.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { applyDelta } from "../../model/snapshot-delta.ts";
import type { ControlPlaneMessage, ResourceVersions, SnapshotMessage } from "../../model/stream-protocol.ts";
import { serviceJson, startHarness } from "../../../test/helpers/stream-client.ts";

test("a stalled proxy gets one delta to the newest state once it reads again; buffered bytes stay bounded", async (t) => {
  const h = await startHarness(t, { debounceMs: 1 });
  await h.store.txn({
    success: Array.from({ length: 50 }, (_, i) => ({
      type: "put" as const,
      key: resourceKey("Service", "default", `base-${i}`),
      value: serviceJson(`base-${i}`),
    })),
  });
  const p = await h.open("slow");
  const first = (await p.next((m) => m.type === "snapshot")) as SnapshotMessage;
  let running: ProxySnapshot = first.snapshot;
  let resources: ResourceVersions | undefined = first.resources;
  p.send({ type: "ack", nonce: first.nonce, version: first.version });
  const [session] = h.cp.stream.sessions();
  const key = "default/slow-1";

  p.stream.pause();
  const before = p.messages.length;
  let maxBuffered = 0;
  const changes = 200;
  for (let i = 0; i < changes; i++) {
    await h.store.put(resourceKey("Service", "default", `churn-${i}`), serviceJson(`churn-${i}`));
    // Let the debounced push run before the next change.
    await new Promise((r) => setTimeout(r, i % 20 === 0 ? 5 : 0));
    maxBuffered = Math.max(maxBuffered, session.bufferedBytes);
  }
  const stalled = session.pushes;
  assert.ok(stalled.coalesced > 0, "changes while the proxy was behind were coalesced");
  assert.ok(stalled.sent <= 2, `at most one message in flight while stalled (sent ${stalled.sent})`);
  assert.ok(maxBuffered <= stalled.bytes, `buffered ${maxBuffered} bytes: at most what was written`);

  // It reads again, and answers what it gets, as a proxy does.
  p.stream.resume();
  const last = `churn-${changes - 1}.default`;
  const apply = (m: ControlPlaneMessage) => {
    if (m.type === "snapshot") [running, resources] = [m.snapshot, m.resources];
    else if (m.type === "delta") {
      const r = applyDelta(running, resources, m);
      assert.ok(r.error === undefined, r.error);
      [running, resources] = [r.snapshot, r.resources];
    } else return;
    p.send({ type: "ack", nonce: m.nonce, version: m.version });
  };
  let seen = before;
  while (running.outbound[last] === undefined) {
    await p.next((m) => p.messages.indexOf(m) >= seen);
    for (; seen < p.messages.length; seen++) apply(p.messages[seen]);
  }
  const received = p.messages.slice(before);
  assert.ok(
    received.length <= 2 && received.every((m) => m.type === "delta"),
    `after resuming: ${received.map((m) => m.type).join(", ")} — the one in flight and one to the newest`,
  );
  assert.deepEqual(running, h.cp.snapshots.get(key), "the deltas applied give the control plane's snapshot");
  assert.equal(Object.keys(running.outbound).filter((k) => k.startsWith("churn-")).length, changes);
  const lastDelta = received.at(-1);
  assert.ok(lastDelta?.type === "delta" && Object.keys(lastDelta.outbound).length < changes + 50);
});
