// The proxy's end of the config stream against a stand-in control plane that says exactly what the
// test wants: of several snapshots that arrive together only the newest is compiled and ACKed, and a
// line over the snapshot limit drops the connection instead of being buffered whole.

import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeMessage, MAX_SNAPSHOT_MESSAGE_BYTES } from "../../model/stream-protocol.ts";
import { waitUntil } from "../../../test/helpers/mesh.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { standIn } from "../testing/stand-in-control-plane.ts";

test("of snapshots that arrive together, only the newest is checked, run and ACKed", async (t) => {
  const applied: string[] = [];
  const { client, received } = await standIn(t, (stream) => {
    const lines = [1, 2, 3].map((n) =>
      encodeMessage({
        type: "snapshot",
        nonce: n,
        version: `v${n}`,
        snapshot: buildSnapshot({ version: `v${n}` }),
      }),
    );
    stream.write(lines.join(""));
  });
  client.snapshot.subscribe((s) => applied.push(s.version));
  client.start();
  await waitUntil(() => received.some((m) => (m as { type: string }).type === "ack"), 10_000, "the ACK");
  assert.deepEqual(applied, ["v3"]);
  const acks = received.filter((m) => (m as { type: string }).type === "ack");
  assert.deepEqual(acks, [{ type: "ack", nonce: 3, version: "v3" }]);
});

test("a line from the control plane longer than the snapshot limit drops the connection", async (t) => {
  let wrote = 0;
  const { client, logs } = await standIn(t, (stream) => {
    // Keep sending one endless line, as long as the proxy keeps reading.
    const chunk = Buffer.alloc(1024 * 1024, "x");
    const more = () => {
      while (!stream.destroyed && wrote <= MAX_SNAPSHOT_MESSAGE_BYTES + chunk.length) {
        wrote += chunk.length;
        if (!stream.write(chunk)) return void stream.once("drain", more);
      }
    };
    more();
  });
  client.start();
  await waitUntil(
    () => logs.some((l) => /bad message from control plane/.test(l)),
    10_000,
    "the refusal logged",
  );
  assert.match(logs.join("\n"), /exceeds the limit of 16777216 bytes/);
  assert.equal(client.snapshot.current(), undefined);
  assert.equal(client.connected, false);
});
