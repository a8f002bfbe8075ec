// subscribe / unsubscribe on a real config stream: an on-demand proxy's subscription is answered by
// a snapshot holding the Service or naming it unresolved, and is carried across a reconnect in the
// hello; hostile input (before hello, from a proxy that did not ask for on-demand, not a list, huge,
// deep, too many, non-strings, past the bound) gets an error naming what was wrong and changes nothing.

import assert from "node:assert/strict";
import { test } from "node:test";
import { resourceKey } from "../../model/resources.ts";
import type { ControlPlaneMessage, SnapshotMessage } from "../../model/stream-protocol.ts";
import { serviceJson, startHarness, type RawProxy } from "../../../test/helpers/stream-client.ts";
import { MAX_NAMES_PER_MESSAGE, MAX_SUBSCRIPTIONS } from "./hello-check.ts";

function snapshotAfter(p: RawProxy, pred: (m: SnapshotMessage) => boolean): Promise<SnapshotMessage> {
  return p.next((m: ControlPlaneMessage) => m.type === "snapshot" && pred(m)) as Promise<SnapshotMessage>;
}

test("an on-demand proxy starts with its pre-loads; a subscribe is answered found or unresolved; hello carries them", async (t) => {
  const h = await startHarness(t);
  await h.store.put(resourceKey("Service", "default", "api"), serviceJson("api"));
  // Whole snapshots, each ACKed: what each subscription brings is read from the snapshot itself.
  const p = await h.open("web", { onDemand: true, deltas: false }, { autoAck: true });
  const first = await snapshotAfter(p, () => true);
  assert.deepEqual(Object.keys(first.snapshot.outbound), []);
  p.send({ type: "subscribe", names: ["api", "ghost.default.svc"] });
  const answered = await snapshotAfter(p, (m) => m.version !== first.version);
  assert.deepEqual(Object.keys(answered.snapshot.outbound), ["api.default"]);
  assert.deepEqual(answered.snapshot.unresolved, ["ghost.default.svc"]);
  p.send({ type: "unsubscribe", names: ["ghost.default.svc"] });
  const dropped = await snapshotAfter(
    p,
    (m) => m.version !== answered.version && m.version !== first.version,
  );
  assert.equal(dropped.snapshot.unresolved, undefined);
  assert.deepEqual(Object.keys(dropped.snapshot.outbound), ["api.default"]);
  p.session.destroy();

  // After a reconnect, the hello's subscriptions are compiled in from the first snapshot.
  const again = await h.open(
    "web",
    { workload: "web-2", onDemand: true, deltas: false, subscriptions: ["api", "nope"] },
    { autoAck: true },
  );
  const resumed = await snapshotAfter(again, () => true);
  assert.deepEqual(Object.keys(resumed.snapshot.outbound), ["api.default"]);
  assert.deepEqual(resumed.snapshot.unresolved, ["nope"]);
});

test("hostile subscribe messages end the stream with an error naming what was wrong", async (t) => {
  const h = await startHarness(t);
  const cases: [string, object | null, object, RegExp][] = [
    ["before hello", null, { type: "subscribe", names: ["api"] }, /^subscribe before hello/],
    ["not on demand", {}, { type: "subscribe", names: ["api"] }, /did not ask for onDemand/],
    [
      "not a list",
      { onDemand: true },
      { type: "subscribe", names: "api" },
      /^subscribe\.names must be a list/,
    ],
    [
      "non-string",
      { onDemand: true },
      { type: "unsubscribe", names: [{}] },
      /^unsubscribe\.names\[0\] must be a string/,
    ],
    [
      "huge",
      { onDemand: true },
      { type: "subscribe", names: ["a".repeat(300)] },
      /names\[0\] must be 1 to 253/,
    ],
    ["deep", { onDemand: true }, { type: "subscribe", names: ["a.b.c.d.e.f"] }, /at most 5 labels/],
    ["upper case", { onDemand: true }, { type: "subscribe", names: ["API"] }, /lower-case host name/],
    ["with port", { onDemand: true }, { type: "subscribe", names: ["api:80"] }, /lower-case host name/],
    [
      "too many in one",
      { onDemand: true },
      { type: "subscribe", names: Array.from({ length: MAX_NAMES_PER_MESSAGE + 1 }, (_, i) => `s${i}`) },
      new RegExp(`at most ${MAX_NAMES_PER_MESSAGE} names`),
    ],
  ];
  for (const [what, hello, msg, expected] of cases) {
    const p = await h.open("web", hello);
    if (hello !== null) await snapshotAfter(p, () => true);
    p.send(msg);
    const err = (await p.next((m) => m.type === "error")) as { code: string; message: string };
    assert.equal(err.code, "bad_message", what);
    assert.match(err.message, expected, what);
    assert.ok(err.message.length < 300, `${what}: bounded`);
    await p.closed;
  }
  // In the hello: refused like the messages, and without onDemand not at all.
  for (const [hello, expected] of [
    [{ onDemand: true, subscriptions: ["UPPER"] }, /^hello\.subscriptions\[0\] must be a lower-case/],
    [{ subscriptions: ["api"] }, /^hello\.subscriptions needs hello\.onDemand/],
    [{ onDemand: "yes" }, /^hello\.onDemand must be true or false/],
    [
      { onDemand: true, subscriptions: Array.from({ length: MAX_SUBSCRIPTIONS + 1 }, (_, i) => `s${i}`) },
      new RegExp(`at most ${MAX_SUBSCRIPTIONS} names`),
    ],
  ] as [object, RegExp][]) {
    const p = await h.open("web", hello);
    const err = (await p.next((m) => m.type === "error")) as { code: string; message: string };
    assert.equal(err.code, "bad_hello");
    assert.match(err.message, expected);
    await p.closed;
  }
});

test("past the bound of names held, the stream is ended with too_many_subscriptions", async (t) => {
  const h = await startHarness(t);
  // Whole snapshots, each ACKed: what each subscription brings is read from the snapshot itself.
  const p = await h.open("web", { onDemand: true, deltas: false }, { autoAck: true });
  await snapshotAfter(p, () => true);
  for (let i = 0; i < MAX_SUBSCRIPTIONS; i += MAX_NAMES_PER_MESSAGE)
    p.send({
      type: "subscribe",
      names: Array.from({ length: MAX_NAMES_PER_MESSAGE }, (_, j) => `s${i + j}`),
    });
  p.send({ type: "subscribe", names: ["s0", "s1"] }); // held already: fine
  p.send({ type: "subscribe", names: ["one-more"] });
  const err = (await p.next((m) => m.type === "error")) as { code: string; message: string };
  assert.equal(err.code, "too_many_subscriptions");
  assert.match(err.message, new RegExp(`at most ${MAX_SUBSCRIPTIONS} subscriptions`));
});
