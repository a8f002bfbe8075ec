// An ACK means "compiled and running": real outbound and inbound listeners follow the config
// client's snapshot cell, fed by a stand-in control plane. A snapshot a listener cannot compile is
// NACKed naming the listener and the reason, and every listener keeps serving the previous one (the
// inbound, which compiled it fine, does not swap alone); an inconsistent snapshot is NACKed with its
// violations before any listener compiles it. Both are counted in weft_config_rejected_total.

import assert from "node:assert/strict";
import type { ServerHttp2Stream } from "node:http2";
import { test, type TestContext } from "node:test";
import { encodeMessage } from "../../model/stream-protocol.ts";
import { httpGet, waitUntil } from "../../../test/helpers/mesh.ts";
import { createInboundListener } from "../inbound/listener.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { createOutboundListener } from "../outbound/listener.ts";
import { startApp } from "../testing/apps.ts";
import { metricValue } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { standIn } from "../testing/stand-in-control-plane.ts";
import { Cell } from "./cell.ts";
import { SnapshotCell } from "./snapshot-cell.ts";
import type { TlsMaterial } from "../types.ts";

type Msg = { type: string; nonce?: number; version?: string; error?: string };

async function setUp(t: TestContext) {
  const [a, b] = await Promise.all([startApp("a"), startApp("b")]);
  t.after(() => Promise.all([a.close(), b.close()]));
  const snapshotTo = (version: string, port: number) =>
    buildSnapshot({ version, appPort: port, services: [{ name: "api", endpoints: [{ port }] }] });

  let stream!: ServerHttp2Stream;
  let nonce = 0;
  const metrics = new ProxyMetrics();
  const cell = new SnapshotCell();
  // As the proxy assembles them: inbound first, then outbound.
  const listenerOpts = { config: cell, tls: new Cell<TlsMaterial>(), metrics };
  const inbound = createInboundListener(listenerOpts);
  const outbound = createOutboundListener(listenerOpts);
  const { port } = await outbound.listen(0, "127.0.0.1");
  t.after(() => Promise.all([inbound.close(), outbound.close()]));
  const { client, received } = await standIn(t, (s) => (stream = s), {
    snapshot: cell,
    onReject: (r) => metrics.configRejected.series(r.reason).value++,
  });
  client.start();
  await waitUntil(() => stream !== undefined, 10_000, "the config stream");

  /** Sends a snapshot and resolves with the proxy's answer to it (ack or nack). */
  const push = async (snapshot: unknown, version = (snapshot as { version: string }).version) => {
    const n = ++nonce;
    stream.write(encodeMessage({ type: "snapshot", nonce: n, version, snapshot } as never));
    let answer: Msg | undefined;
    await waitUntil(
      () => !!(answer = (received as Msg[]).find((m) => m.nonce === n)),
      10_000,
      `the answer to snapshot ${n}`,
    );
    return answer as Msg;
  };
  const updates = (direction: string) =>
    metricValue(metrics.render(), "weft_config_updates_total", { direction }) ?? 0;
  const rejected = (reason: string) =>
    metricValue(metrics.render(), "weft_config_rejected_total", { reason });
  return { a, b, snapshotTo, push, port, client, metrics, outbound, updates, rejected };
}

test("a snapshot a listener cannot compile is NACKed with the listener and reason; the old one keeps serving everywhere", async (t) => {
  const { a, b, snapshotTo, push, port, client, metrics, outbound, updates, rejected } = await setUp(t);
  assert.deepEqual(await push(snapshotTo("v1", a.port)), { type: "ack", nonce: 1, version: "v1" });
  assert.equal((await httpGet(port, "http://api/x")).body, "a GET /x");
  assert.deepEqual([updates("inbound"), updates("outbound")], [1, 1]);

  // The outbound's compile fails (a real failure inside compileOutbound, injected at the metrics
  // registry it calls); the inbound compiles v2 fine first, and must not swap it in alone.
  const failing = t.mock.method(metrics, "retainDestinations", () => {
    throw new Error("out of metric series");
  });
  const nack = await push(snapshotTo("v2", b.port));
  assert.equal(nack.type, "nack");
  assert.equal(nack.error, "not applied: outbound listener: out of metric series");
  assert.deepEqual(client.lastRejection, { version: "v2", reason: "compile_failed", error: nack.error });
  assert.equal(rejected("compile_failed"), 1);
  assert.equal(client.snapshot.current()?.version, "v1");
  assert.equal(outbound.table?.version, "v1");
  assert.deepEqual([updates("inbound"), updates("outbound")], [1, 1], "no listener swapped");
  assert.equal((await httpGet(port, "http://api/y")).body, "a GET /y", "still routed by v1");

  // Once it compiles, the next snapshot is ACKed and runs in both.
  failing.mock.restore();
  assert.equal((await push(snapshotTo("v3", b.port))).type, "ack");
  assert.deepEqual([updates("inbound"), updates("outbound")], [2, 2]);
  assert.equal((await httpGet(port, "http://api/z")).body, "b GET /z");
});

test("an inconsistent snapshot is NACKed with its violations before any listener compiles it", async (t) => {
  const { a, snapshotTo, push, port, client, updates, rejected } = await setUp(t);
  assert.equal((await push(snapshotTo("v1", a.port))).type, "ack");

  const broken = snapshotTo("v2", a.port);
  broken.outbound["api.default"].routes[0].backends[0].cluster = "constructor";
  const nack = await push(broken);
  assert.equal(nack.type, "nack");
  assert.match(
    nack.error ?? "",
    /^inconsistent snapshot: outbound\["api\.default"\]\.routes\[0\]\.backends\[0\]\.cluster: names cluster "constructor"/,
  );
  assert.equal(client.lastRejection?.reason, "inconsistent");
  assert.equal(rejected("inconsistent"), 1);

  // Not an object at all, and a message whose version is not the snapshot's: refused the same way.
  assert.match((await push("junk", "v3")).error ?? "", /^inconsistent snapshot: snapshot: must be an object/);
  assert.match((await push(snapshotTo("v4", a.port), "v5")).error ?? "", /version: differs from the message/);
  assert.equal(rejected("inconsistent"), 3);
  assert.deepEqual([updates("inbound"), updates("outbound")], [1, 1]);
  assert.equal((await httpGet(port, "http://api/")).status, 200);
});
