// The proxy's config client and delta messages, against a stand-in control plane that says exactly
// what the test wants: deltas that arrive together with a snapshot are applied in order on top of it
// and put into service once; a delta for another base is NACKed (base_mismatch) and the proxy runs on;
// malformed deltas from a hostile control plane are NACKed with the field named, never crash the
// proxy, and leave what it runs alone; after a reconnect the hello carries the running snapshot's
// entry versions (unless that makes it too big).

import assert from "node:assert/strict";
import { test } from "node:test";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import {
  encodeMessage,
  type DeltaMessage,
  type ResourceVersions,
  type SnapshotMessage,
} from "../../model/stream-protocol.ts";
import { waitUntil } from "../../../test/helpers/mesh.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { standIn } from "../testing/stand-in-control-plane.ts";

type Msg = { type: string; nonce?: number; version?: string; error?: string } & Record<string, unknown>;

const v1 = buildSnapshot({
  version: "v1",
  services: [
    { name: "a", port: 80, endpoints: [{ port: 1001 }] },
    { name: "b", port: 80, endpoints: [{ port: 1002 }] },
  ],
});

/** Versions of a snapshot's entries: any string per entry will do for the proxy. */
function versionsOf(s: ProxySnapshot, tag = "1"): ResourceVersions {
  const of = (m: Record<string, unknown>) => Object.fromEntries(Object.keys(m).map((k) => [k, `h${tag}`]));
  return { outbound: of(s.outbound), clusters: of(s.clusters) };
}

function snapshotMsg(nonce: number, s: ProxySnapshot): SnapshotMessage {
  return { type: "snapshot", nonce, version: s.version, snapshot: s, resources: versionsOf(s) };
}

/** The delta from `from` to `to`, as a control plane would make it. */
function delta(nonce: number, from: ProxySnapshot, to: ProxySnapshot, tag: string): DeltaMessage {
  const { version: _v, outbound: _o, clusters: _c, ...head } = to;
  const changed = <T>(a: Record<string, T>, b: Record<string, T>) =>
    Object.fromEntries(Object.entries(b).filter(([k, x]) => JSON.stringify(a[k]) !== JSON.stringify(x)));
  const outbound = changed(from.outbound, to.outbound);
  const clusters = changed(from.clusters, to.clusters);
  return {
    type: "delta",
    nonce,
    version: to.version,
    base: from.version,
    head,
    outbound,
    clusters,
    removed: {
      outbound: Object.keys(from.outbound).filter((k) => !(k in to.outbound)),
      clusters: Object.keys(from.clusters).filter((k) => !(k in to.clusters)),
    },
    resources: versionsOf({ ...to, outbound, clusters }, tag),
  };
}

const answers = (received: unknown[]) =>
  (received as Msg[]).filter((m) => m.type === "ack" || m.type === "nack");

test("a snapshot and the deltas after it, arriving together, run once: the last state, the last nonce ACKed", async (t) => {
  const v2 = buildSnapshot({
    version: "v2",
    services: [
      { name: "a", port: 80, endpoints: [{ port: 1001 }, { port: 1003 }] },
      { name: "b", port: 80, endpoints: [{ port: 1002 }] },
    ],
  });
  const v3 = buildSnapshot({
    version: "v3",
    services: [
      { name: "a", port: 80, endpoints: [{ port: 1001 }, { port: 1003 }] },
      { name: "c", port: 80, endpoints: [{ port: 1004 }] },
    ],
  });
  const published: string[] = [];
  const { client, received } = await standIn(t, (stream) => {
    const old = buildSnapshot({ version: "v0" });
    const lines = [
      snapshotMsg(1, old), // superseded by the next whole snapshot: never run
      delta(2, old, v1, "x"), // a delta before the newest snapshot: moot
      snapshotMsg(3, v1),
      delta(4, v1, v2, "2"),
      delta(5, v2, v3, "3"),
    ];
    stream.write(lines.map((l) => encodeMessage(l)).join(""));
  });
  client.snapshot.subscribe((s) => published.push(s.version));
  client.start();
  await waitUntil(() => answers(received).length > 0, 10_000, "the answer");
  assert.deepEqual(published, ["v3"], "compiled and swapped once");
  assert.deepEqual(answers(received), [{ type: "ack", nonce: 5, version: "v3" }]);
  const running = client.snapshot.current()!;
  assert.deepEqual(running, { ...v3, outbound: running.outbound });
  assert.deepEqual(Object.keys(running.outbound).sort(), ["a.default", "c.default"]);
  assert.deepEqual(running.clusters, v3.clusters);
});

test("a delta for another base is NACKed base_mismatch; the proxy keeps running, and takes the whole resend", async (t) => {
  const v2 = buildSnapshot({ version: "v2", services: [{ name: "a", port: 80, endpoints: [{ port: 9 }] }] });
  const reasons: string[] = [];
  const { client, received } = await standIn(
    t,
    (stream, got) => {
      stream.write(encodeMessage(snapshotMsg(1, v1)));
      void waitUntil(() => answers(got).length === 1, 10_000, "ACK of v1").then(() => {
        stream.write(encodeMessage({ ...delta(2, v1, v2, "2"), base: "v-other" }));
        return waitUntil(() => answers(got).length === 2, 10_000, "the NACK").then(() =>
          stream.write(encodeMessage(snapshotMsg(3, v2))),
        );
      });
    },
    { onReject: (r) => reasons.push(r.reason) },
  );
  client.start();
  await waitUntil(() => answers(received).length === 3, 10_000, "three answers");
  const [ack1, nack, ack3] = answers(received);
  assert.deepEqual(ack1, { type: "ack", nonce: 1, version: "v1" });
  assert.equal(nack.type, "nack");
  assert.equal(nack.nonce, 2);
  assert.match(nack.error!, /base mismatch: the delta applies to "v-other", this proxy runs "v1"/);
  assert.deepEqual(reasons, ["base_mismatch"]);
  assert.deepEqual(ack3, { type: "ack", nonce: 3, version: "v2" });
  assert.equal(client.snapshot.current()?.version, "v2");
});

test("malformed deltas are NACKed naming what is wrong; the proxy runs on, unharmed", async (t) => {
  const good = delta(0, v1, buildSnapshot({ version: "v2", services: [{ name: "a", port: 80 }] }), "2");
  const cases: [string, object, RegExp][] = [
    [
      "removed not a list",
      { removed: { outbound: "a.default", clusters: [] } },
      /delta\.removed\.outbound must be a list/,
    ],
    [
      "removed entry not a string",
      { removed: { outbound: [7], clusters: [] } },
      /delta\.removed\.outbound\[0\] must be a string/,
    ],
    ["removes what it lacks", { removed: { outbound: ["zzz"], clusters: [] } }, /"zzz" is not in the base/],
    [
      "removes more than there is",
      { removed: { outbound: Array(1000).fill("a.default"), clusters: [] } },
      /names 1000 entries; the base has 2/,
    ],
    ["head not an object", { head: [1] }, /delta\.head must be an object/],
    [
      "head carries outbound",
      { head: { ...good.head, outbound: {} } },
      /delta\.head must not carry outbound/,
    ],
    [
      "sets and removes",
      {
        removed: { outbound: ["a.default"], clusters: [] },
        outbound: { "a.default": v1.outbound["a.default"] },
        resources: { outbound: { "a.default": "h" }, clusters: {} },
      },
      /both sets and removes "a\.default"/,
    ],
    [
      "versions missing",
      { resources: { outbound: {}, clusters: {} }, outbound: { "a.default": v1.outbound["a.default"] } },
      /must give the version of exactly the entries sent/,
    ],
    [
      "version not a string",
      { resources: { outbound: { x: 5 }, clusters: {} } },
      /delta\.resources\.outbound\["x"\] must be a version string/,
    ],
    ["no version", { version: 12 }, /delta\.version must be a version string/],
    [
      "an entry that is not consistent",
      {
        clusters: JSON.parse('{"__proto__":{"junk":true}}'),
        resources: { outbound: {}, clusters: JSON.parse('{"__proto__":"h"}') },
      },
      /inconsistent snapshot/,
    ],
  ];
  const { client, received, logs } = await standIn(t, (stream, got) => {
    stream.write(encodeMessage(snapshotMsg(1, v1)));
    void (async () => {
      for (const [i, [, patch]] of cases.entries()) {
        await waitUntil(() => answers(got).length === i + 1, 10_000, `answer ${i + 1}`);
        stream.write(encodeMessage({ ...good, nonce: i + 2, ...patch } as DeltaMessage));
      }
    })();
  });
  client.start();
  await waitUntil(() => answers(received).length === cases.length + 1, 10_000, "every answer");
  const nacks = answers(received).slice(1);
  for (const [i, [what, , expected]] of cases.entries()) {
    assert.equal(nacks[i].type, "nack", what);
    assert.equal(nacks[i].nonce, i + 2, what);
    assert.match(nacks[i].error!, expected, what);
  }
  assert.deepEqual(client.snapshot.current(), v1, "still running v1, untouched");
  assert.equal(({} as Record<string, unknown>).junk, undefined, "no prototype touched");
  assert.ok(logs.some((l) => /rejected config/.test(l)));
});

test("after a reconnect the hello carries the running snapshot's entry versions, unless too big", async (t) => {
  for (const [what, services, carried] of [
    ["small", 2, true],
    ["too big for a hello", 1500, false],
  ] as const) {
    const big = buildSnapshot({
      version: `v-${services}`,
      services: Array.from({ length: services }, (_, i) => ({
        name: `service-with-a-rather-long-name-${i}`,
        port: 80,
        endpoints: [{ port: 1000 + i }],
      })),
    });
    let streams = 0;
    const { client, received } = await standIn(
      t,
      (stream, got) => {
        if (++streams > 1) return;
        stream.write(encodeMessage(snapshotMsg(1, big)));
        // Once ACKed, the stream is dropped: the proxy reconnects.
        void waitUntil(() => answers(got).length > 0, 10_000, "ACK").then(() => stream.close());
      },
      { backoffMs: 10 },
    );
    const hellos = () => (received as Msg[]).filter((m) => m.type === "hello");
    client.start();
    await waitUntil(() => hellos().length === 2, 10_000, `${what}: the second hello`);
    const [first, second] = hellos();
    assert.equal(first.version, undefined, what);
    assert.equal(second.version, big.version, what);
    if (carried) assert.deepEqual(second.resources, versionsOf(big), what);
    else {
      assert.equal(second.resources, undefined, what);
      assert.ok(Buffer.byteLength(JSON.stringify(versionsOf(big))) > 48 * 1024, "they would not fit");
    }
  }
});
