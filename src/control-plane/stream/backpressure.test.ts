// Pushes respect the proxy's reading pace: a proxy that stops reading (a paused reader: its HTTP/2
// flow-control window fills) is not sent a snapshot per change. The control plane holds at most the
// one snapshot already written, and when the proxy reads again it gets only the newest.

import assert from "node:assert/strict";
import { test } from "node:test";
import { resourceKey } from "../../model/resources.ts";
import type { SnapshotMessage } from "../../model/stream-protocol.ts";
import { startHarness } from "../../../test/helpers/stream-client.ts";

const service = (name: string) =>
  JSON.stringify({
    apiVersion: "weft.dev/v1alpha1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: { ports: [{ port: 8080, protocol: "http" }] },
  });

test("a stalled proxy gets only the newest snapshot once it reads again; buffered bytes stay bounded", async (t) => {
  const h = await startHarness(t, { debounceMs: 1 });
  // Enough services that one snapshot is larger than the stream's flow-control window.
  await h.store.txn({
    success: Array.from({ length: 300 }, (_, i) => ({
      type: "put" as const,
      key: resourceKey("Service", "default", `base-${i}`),
      value: service(`base-${i}`),
    })),
  });
  const p = await h.open("slow");
  const first = (await p.next((m) => m.type === "snapshot")) as SnapshotMessage;
  const snapshotBytes = JSON.stringify(first).length;
  assert.ok(snapshotBytes > 65_535, `one snapshot (${snapshotBytes} bytes) overflows the window`);
  const [session] = h.cp.stream.sessions();

  p.stream.pause();
  const before = p.messages.length;
  let maxBuffered = 0;
  const changes = 1000;
  for (let i = 0; i < changes; i++) {
    await h.store.put(resourceKey("Service", "default", `churn-${i}`), service(`churn-${i}`));
    // Let the debounced push run before the next change.
    await new Promise((r) => setTimeout(r, i % 50 === 0 ? 5 : 0));
    maxBuffered = Math.max(maxBuffered, session.bufferedBytes);
  }
  const { sent, coalesced } = session.pushes;
  assert.ok(coalesced > 0, "changes while the proxy was behind were coalesced");
  assert.ok(sent <= 3, `at most the snapshot in flight was written while stalled (sent ${sent})`);
  // Whatever the number of changes, the control plane holds about one snapshot for this proxy.
  const newestBytes = snapshotBytes + changes * 700;
  assert.ok(maxBuffered <= newestBytes, `buffered ${maxBuffered} bytes (one snapshot: ≤ ${newestBytes})`);

  p.stream.resume();
  const last = (await p.next(
    (m) => m.type === "snapshot" && Object.keys(m.snapshot.outbound).includes(`churn-${changes - 1}.default`),
  )) as SnapshotMessage;
  const received = p.messages.slice(before).filter((m) => m.type === "snapshot");
  assert.ok(received.length <= 3, `after resuming: ${received.length} snapshots, not one per change`);
  assert.equal(received.at(-1), last, "the newest is the last one received");
  assert.equal(Object.keys(last.snapshot.outbound).filter((k) => k.startsWith("churn-")).length, changes);
});
