// Request smuggling and malformed HTTP, as raw bytes on a socket, against BOTH listeners: every case
// gets a 4xx local reply (x-weft-error), the connection is closed, and the app never sees a request.
// Node's parser (llhttp, strict) refuses most of these itself; the ones marked "ours" get through
// llhttp and are refused by request-head.ts.

import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { startInbound, startOutbound } from "../testing/harness.ts";
import { rawRequest } from "../testing/raw.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { metricValue } from "../testing/harness.ts";

const H = "Host: app\r\n";
const CASES: [name: string, bytes: string, status: number][] = [
  [
    "Content-Length with Transfer-Encoding",
    `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
  ],
  [
    "two different Content-Lengths",
    `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`,
    400,
  ],
  [
    "two equal Content-Lengths",
    `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd`,
    400,
  ],
  ["Content-Length list", `POST / HTTP/1.1\r\n${H}Content-Length: 4, 4\r\n\r\nabcd`, 400],
  ["Content-Length +4", `POST / HTTP/1.1\r\n${H}Content-Length: +4\r\n\r\nabcd`, 400],
  ["Content-Length -1", `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\nabcd`, 400],
  ["Content-Length hex", `POST / HTTP/1.1\r\n${H}Content-Length: 0x4\r\n\r\nabcd`, 400],
  [
    "TE not ending in chunked",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
    400,
  ],
  [
    "TE gzip, chunked (ours)",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    400,
  ],
  ["TE xchunked", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ["TE identity", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`, 400],
  [
    "TE twice",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
  ],
  [
    "TE in HTTP/1.0 (ours)",
    `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
    400,
  ],
  ["space before colon", `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ["obs-fold", `GET / HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`, 400],
  ["obs-fold TE", `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, 400],
  ["bad chunk size", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, 400],
  [
    "chunk size overflow",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n0\r\n\r\n`,
    400,
  ],
  [
    "negative chunk size",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n`,
    400,
  ],
  ["bare LF in chunks", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n`, 400],
  [
    "chunk longer than its size",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n`,
    400,
  ],
  ["missing Host (ours)", "GET / HTTP/1.1\r\n\r\n", 400],
  ["empty Host (ours)", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400],
  ["two Hosts (ours)", `GET / HTTP/1.1\r\n${H}Host: other\r\n\r\n`, 400],
  ["bare LF header lines", "GET / HTTP/1.1\nHost: app\n\n", 400],
  ["NUL in a header value", `GET / HTTP/1.1\r\n${H}X-A: b\x00c\r\n\r\n`, 400],
  ["CR in a header value", `GET / HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`, 400],
  ["space in a header name", `GET / HTTP/1.1\r\n${H}X A: b\r\n\r\n`, 400],
  ["space in the target", `GET /a b HTTP/1.1\r\n${H}\r\n`, 400],
  ["HTTP/1.2", `GET / HTTP/1.2\r\n${H}\r\n`, 400],
  ["HTTP/2.0 over HTTP/1 (ours)", `GET / HTTP/2.0\r\n${H}\r\n`, 400],
  ["lower-case method", `get / HTTP/1.1\r\n${H}\r\n`, 400],
  ["oversize headers", `GET / HTTP/1.1\r\n${H}X-A: ${"a".repeat(70_000)}\r\n\r\n`, 431],
];

test("malformed and ambiguous requests never reach the app, on either listener", async (t) => {
  const testCa = await createTestCa();
  const app = await startApp("app");
  const snapshot = buildSnapshot({
    appPort: app.port,
    services: [{ name: "app", endpoints: [{ port: app.port }] }],
  });
  const serverMaterial = await testCa.material(sid("app"));
  const client = await testCa.material(sid("web"));
  const outbound = await startOutbound(snapshot);
  const inbound = await startInbound(snapshot, serverMaterial);
  t.after(() => Promise.all([outbound.close(), inbound.close(), app.close(), testCa.cleanup()]));
  const clientTls = {
    key: client.keyPem,
    cert: client.certChainPem,
    ca: client.trustBundlePem,
    checkServerIdentity: () => undefined,
  };

  // The harness works: a well-formed chunked request reaches the app through both.
  const ok =
    "POST /ok HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  assert.equal((await rawRequest(outbound.port, ok)).status, 200);
  assert.equal((await rawRequest(inbound.port, ok, { tls: clientTls })).status, 200);
  assert.equal(app.seen.length, 2);
  const before = app.started.length;

  for (const [name, bytes, status] of CASES) {
    for (const [where, port, opts] of [
      ["outbound", outbound.port, {}],
      ["inbound", inbound.port, { tls: clientTls }],
    ] as const) {
      const r = await rawRequest(port, bytes, opts);
      assert.equal(r.status, status, `${where}: ${name}: got ${JSON.stringify(r.statusLine)}`);
      assert.match(r.text, /\r\nx-weft-error: (bad_request|headers_too_large)\r\n/i, `${where}: ${name}`);
      assert.ok(r.closedByServer, `${where}: ${name}: connection left open`);
    }
  }
  assert.equal(app.started.length, before, "the app saw none of them");
  const local = (text: string, direction: string) =>
    (metricValue(text, "weft_local_replies_total", { direction, code: "bad_request" }) ?? 0) +
    (metricValue(text, "weft_local_replies_total", { direction, code: "headers_too_large" }) ?? 0);
  assert.equal(local(outbound.metrics.render(), "outbound"), CASES.length);
  assert.equal(local(inbound.metrics.render(), "inbound"), CASES.length);
});

test("HTTP/1.0 without Host is fine in absolute-form; garbage bytes get a 400, never a crash", async (t) => {
  const app = await startApp("app");
  const outbound = await startOutbound(
    buildSnapshot({ services: [{ name: "app", endpoints: [{ port: app.port }] }] }),
  );
  t.after(() => Promise.all([outbound.close(), app.close()]));
  const r = await rawRequest(outbound.port, "GET http://app/x HTTP/1.0\r\n\r\n");
  assert.equal(r.status, 200);
  for (const junk of [
    "\x00\x01\x02\r\n\r\n",
    "\x16\x03\x01\x02\x00\x01\x00",
    "GET\r\n\r\n",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
  ]) {
    const g = await rawRequest(outbound.port, junk);
    assert.ok(g.closedByServer);
    assert.ok(g.status === 0 || g.status === 400, `${JSON.stringify(junk)} → ${g.statusLine}`);
  }
  assert.equal(
    (await rawRequest(outbound.port, "GET http://app/y HTTP/1.0\r\n\r\n")).status,
    200,
    "still serving",
  );
});

test("a body framing error after the request was forwarded aborts it upstream (never completed)", async (t) => {
  let appOutcome!: (how: string) => void;
  const outcome = new Promise<string>((r) => (appOutcome = r));
  let started!: () => void;
  const appStarted = new Promise<void>((r) => (started = r));
  const app = await startApp("app", undefined, {
    stream: (req) => {
      started();
      req.on("data", () => {});
      req.on("end", () => appOutcome("complete"));
      req.on("close", () => appOutcome(req.complete ? "complete" : "aborted"));
    },
  });
  const outbound = await startOutbound(
    buildSnapshot({ services: [{ name: "app", endpoints: [{ port: app.port }] }] }),
  );
  t.after(() => Promise.all([outbound.close(), app.close()]));
  const socket = net.connect(outbound.port, "127.0.0.1");
  let reply = "";
  socket.on("data", (d) => (reply += d.toString("latin1")));
  socket.write("POST / HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  await appStarted;
  const closed = once(socket, "close");
  socket.write("zz\r\n");
  assert.equal(await outcome, "aborted");
  await closed;
  assert.match(reply, /^HTTP\/1.1 400 /);
  assert.match(reply, /x-weft-error: bad_request/);
});
