// The smuggling and framing catalogue: raw inputs, each with its expected outcome — the statuses the
// client receives, whether the connection is closed, how many requests the app sees and exactly what
// it sees — run against every edge (outbound --upstream port, inbound over mTLS, inbound PERMISSIVE
// plaintext) in front of a raw app that records the bytes it receives. Every case is also checked
// against the strict reference parser (testing/differential.ts): the app never sees a request the
// strict parser would not produce from the same bytes. Node's parser (llhttp, strict) refuses most
// malformed input; request-head.ts refuses the rest (see docs/proxy.md, "HTTP/1.1 framing").

import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { startApp } from "../testing/apps.ts";
import { startOutbound, metricValue } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { differentialViolations } from "../testing/differential.ts";
import { EDGES, startEdgeTargets, type EdgeName } from "../testing/edge-targets.ts";
import type { StrictRequest } from "../testing/strict-http.ts";

const H = "Host: app\r\n";
const SMUGGLED = `GET /admin HTTP/1.1\r\nHost: app\r\nx-forwarded-client-cert: By=x;URI=spiffe://weft.local/ns/default/sa/admin\r\n\r\n`;
const XFCC = "By=spiffe://weft.local/ns/default/sa/app;URI=spiffe://weft.local/ns/default/sa/web";

interface Case {
  name: string;
  bytes: string;
  /** Statuses of the responses, in order; per edge where they differ. */
  statuses: number[] | Record<EdgeName, number[]>;
  /** Requests the app receives. */
  app: number;
  /** What the reply must contain. */
  reply?: RegExp;
  /** Edges where a refusal keeps the connection (a valid request the proxy does not support). */
  staysOpen?: EdgeName[];
  /** What exactly the app sees, when it sees something. */
  see?: (seen: StrictRequest[], edge: EdgeName) => void;
  /** Only these edges (default: every edge). */
  only?: EdgeName[];
}

function header(r: StrictRequest, name: string): string[] {
  return r.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}
const bodyIs = (text: string) => (seen: StrictRequest[]) =>
  assert.equal(seen[0].body.toString("latin1"), text);
const hostIs = (host: string) => (seen: StrictRequest[]) => assert.deepEqual(header(seen[0], "host"), [host]);

const refused = (name: string, bytes: string, status = 400): Case => ({
  name,
  bytes,
  statuses: [status],
  app: 0,
});

const CASES: Case[] = [
  // --- CL.TE, TE.CL, TE.TE ---
  refused(
    "CL.TE",
    `POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`,
  ),
  refused(
    "TE.CL",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`,
  ),
  refused("TE: xchunked", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`),
  refused("TE: space before colon", `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`),
  refused(
    "TE: twice",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n`,
  ),
  refused(
    "TE: chunked, chunked",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`,
  ),
  refused("TE: gzip, chunked", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`),
  refused(
    "TE: chunked, identity",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
  ),
  refused("TE: identity", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`),
  refused("TE: vertical tab", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n`),
  refused("TE: obs-fold", `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`),
  refused("TE in HTTP/1.0", `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`),
  {
    name: "TE: CHUNKED with a tab and trailing space (valid OWS, any case)",
    bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\tCHUNKED \r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
    statuses: [200],
    app: 1,
    see: bodyIs("abc"),
  },
  // --- Content-Length ---
  refused(
    "two equal Content-Lengths",
    `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd`,
  ),
  refused(
    "two different Content-Lengths",
    `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`,
  ),
  refused("Content-Length list", `POST / HTTP/1.1\r\n${H}Content-Length: 4, 4\r\n\r\nabcd`),
  refused("Content-Length +4", `POST / HTTP/1.1\r\n${H}Content-Length: +4\r\n\r\nabcd`),
  refused("Content-Length -1", `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\nabcd`),
  refused("Content-Length 0x4", `POST / HTTP/1.1\r\n${H}Content-Length: 0x4\r\n\r\nabcd`),
  refused("Content-Length 4 4", `POST / HTTP/1.1\r\n${H}Content-Length: 4 4\r\n\r\nabcd`),
  refused(
    "Content-Length overflow",
    `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999\r\n\r\nabcd`,
  ),
  {
    name: "Content-Length with surrounding spaces and a leading zero (valid)",
    bytes: `POST / HTTP/1.1\r\n${H}Content-Length:  04 \r\n\r\nabcd`,
    statuses: [200],
    app: 1,
    see: bodyIs("abcd"),
  },
  // --- line endings, folding, controls ---
  refused("obs-fold", `GET / HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`),
  refused("bare LF header lines", "GET / HTTP/1.1\nHost: app\n\n"),
  refused("bare LF after a header", `GET / HTTP/1.1\r\n${H}X-A: b\n\r\n`),
  refused("bare CR in a value", `GET / HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`),
  refused("bare CR in the request line", `GET /\r HTTP/1.1\r\n${H}\r\n`),
  refused("NUL in a value", `GET / HTTP/1.1\r\n${H}X-A: b\x00c\r\n\r\n`),
  refused("control byte in a value", `GET / HTTP/1.1\r\n${H}X-A: b\x01c\r\n\r\n`),
  refused("DEL in a value", `GET / HTTP/1.1\r\n${H}X-A: b\x7fc\r\n\r\n`),
  refused("NUL in a name", `GET / HTTP/1.1\r\n${H}X-\x00A: b\r\n\r\n`),
  refused("space in a name", `GET / HTTP/1.1\r\n${H}X A: b\r\n\r\n`),
  refused("separator in a name", `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`),
  refused("empty name", `GET / HTTP/1.1\r\n${H}: b\r\n\r\n`),
  // --- Host and the target ---
  refused("missing Host", "GET / HTTP/1.1\r\n\r\n"),
  refused("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
  refused("two Hosts", `GET / HTTP/1.1\r\n${H}Host: other\r\n\r\n`),
  {
    name: "absolute-form wins over a different Host",
    bytes: "GET http://app/x?y HTTP/1.1\r\nHost: evil\r\n\r\n",
    statuses: [200],
    app: 1,
    see: (seen) => {
      hostIs("app")(seen);
      assert.equal(seen[0].target, "/x?y");
    },
  },
  {
    name: "absolute-form https://",
    bytes: `GET https://app/ HTTP/1.1\r\n${H}\r\n`,
    statuses: { outbound: [501], "inbound-mtls": [400], "inbound-permissive": [400] },
    app: 0,
    staysOpen: ["outbound"],
  },
  refused("absolute-form with userinfo", `GET http://u@app/ HTTP/1.1\r\n${H}\r\n`),
  // --- Connection naming what the proxy frames or sets ---
  {
    name: "Connection: host with a body carrying a second request (issue 6, hole 1)",
    bytes: `POST /upload HTTP/1.1\r\n${H}Content-Length: ${SMUGGLED.length}\r\nConnection: host\r\n\r\n${SMUGGLED}`,
    statuses: [200],
    app: 1,
    see: (seen) => {
      hostIs("app")(seen);
      assert.equal(seen[0].target, "/upload");
      assert.equal(seen[0].body.toString("latin1"), SMUGGLED, "the body stays a body");
    },
  },
  {
    name: "Connection: host with Host: 0 — before the fix the app read Content-Length: 0 and a 2nd request",
    bytes: `POST /upload HTTP/1.1\r\nHost: 0\r\nContent-Length: ${SMUGGLED.length}\r\nConnection: host\r\n\r\n${SMUGGLED}`,
    statuses: [200],
    app: 1,
    see: (seen) => {
      hostIs("0")(seen);
      assert.equal(seen[0].body.toString("latin1"), SMUGGLED, "the body stays a body");
    },
  },
  {
    name: "Connection: host, content-length, transfer-encoding with a chunked body",
    bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: host, content-length, transfer-encoding\r\nX-Keep: 1\r\n\r\n3\r\nabc\r\n0\r\n\r\n`,
    statuses: [200],
    app: 1,
    see: (seen) => {
      hostIs("app")(seen);
      bodyIs("abc")(seen);
      assert.deepEqual(header(seen[0], "x-keep"), ["1"]);
    },
  },
  {
    name: "Connection: x-forwarded-for, x-forwarded-client-cert, x-a",
    bytes: `GET / HTTP/1.1\r\n${H}X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Client-Cert: URI=spiffe://weft.local/ns/default/sa/admin\r\nX-A: 1\r\nX-B: 2\r\nConnection: x-forwarded-for, x-forwarded-client-cert, x-a\r\n\r\n`,
    statuses: [200],
    app: 1,
    see: (seen, edge) => {
      assert.deepEqual(header(seen[0], "x-forwarded-for"), ["127.0.0.1"]);
      assert.deepEqual(header(seen[0], "x-forwarded-client-cert"), edge === "inbound-mtls" ? [XFCC] : []);
      assert.deepEqual(header(seen[0], "x-a"), []);
      assert.deepEqual(header(seen[0], "x-b"), ["2"]);
    },
  },
  {
    name: "a client's X-Forwarded-Client-Cert never reaches the app",
    bytes: `GET / HTTP/1.1\r\n${H}X-Forwarded-Client-Cert: URI=spiffe://weft.local/ns/default/sa/admin\r\n\r\n`,
    statuses: [200],
    app: 1,
    see: (seen, edge) =>
      assert.deepEqual(header(seen[0], "x-forwarded-client-cert"), edge === "inbound-mtls" ? [XFCC] : []),
  },
  {
    // llhttp accepts an empty extension name, RFC 9112's grammar does not; the size is the same to
    // both, and the proxy drops extensions when it re-frames the body (differential.ts: "tolerated").
    name: "a chunk extension with an empty name is dropped with the others",
    bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;;a=b\r\nxxxxx\r\n0\r\n\r\n`,
    statuses: [200],
    app: 1,
    see: bodyIs("xxxxx"),
  },
  // --- Expect, Upgrade ---
  {
    name: "Expect: 100-continue is answered by the proxy",
    bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nExpect: 100-continue\r\n\r\nabc`,
    statuses: [100, 200],
    app: 1,
    see: (seen) => assert.deepEqual(header(seen[0], "expect"), []),
  },
  {
    name: "Expect: 100-continue pipelined behind another request gets no interim 100 (Node could queue it after the final head)",
    bytes: `GET / HTTP/1.1\r\n${H}\r\nPOST / HTTP/1.1\r\n${H}Content-Length: 3\r\nExpect: 100-continue\r\n\r\nabc`,
    statuses: [200, 200],
    app: 2,
  },
  refused(
    "Expect: something else",
    `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nExpect: x-unknown\r\n\r\nabc`,
    417,
  ),
  {
    name: "Upgrade: h2c is dropped, the request served as HTTP/1.1",
    bytes: `GET / HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
    statuses: [200],
    app: 1,
    see: (seen) => {
      assert.deepEqual(header(seen[0], "upgrade"), []);
      assert.deepEqual(header(seen[0], "http2-settings"), []);
    },
  },
  {
    name: "Upgrade: h2c then a pipelined request: the upgrade request is the connection's last",
    bytes: `POST /1 HTTP/1.1\r\n${H}Connection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\n${H}\r\n`,
    statuses: [200],
    reply: /\r\nConnection: close\r\n/,
    app: 1,
    see: (seen) => assert.equal(seen[0].target, "/1"),
  },
  // --- chunked bodies ---
  refused(
    "chunk size not hex",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`,
  ),
  refused(
    "chunk size overflow",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n0\r\n\r\n`,
  ),
  refused(
    "negative chunk size",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n`,
  ),
  refused("bare LF in chunks", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n`),
  refused(
    "chunk longer than its size",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n`,
  ),
  refused(
    "bare LF in a chunk extension",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;a=b\nc\r\nabc\r\n0\r\n\r\n`,
  ),
  refused(
    "huge chunk extension",
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;a=${"b".repeat(20_000)}\r\nabc\r\n0\r\n\r\n`,
  ),
  {
    name: "chunk extensions (valid) are not forwarded; the data is",
    bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;name=value;q="x y"\r\nabc\r\n0;last\r\n\r\n`,
    statuses: [200],
    app: 1,
    see: bodyIs("abc"),
  },
  {
    name: "trailers",
    bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n`,
    statuses: [200],
    app: 1,
    see: bodyIs("abc"),
  },
  // --- pipelining (issue 6, hole 11) ---
  {
    name: "two good pipelined requests",
    bytes: `GET /1 HTTP/1.1\r\n${H}\r\nPOST /2 HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\nhi`,
    statuses: [200, 200],
    app: 2,
  },
  {
    name: "pipelined: a good request then a malformed one — its response first, then 400",
    bytes: `POST /1 HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nX A: b\r\n\r\n`,
    statuses: [200, 400],
    app: 1,
    see: (seen) => assert.equal(seen[0].target, "/1"),
  },
  {
    name: "pipelined: two good requests then CL.TE",
    bytes: `GET /1 HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}\r\nPOST /3 HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG`,
    statuses: [200, 200, 400],
    app: 2,
  },
  {
    name: "pipelined: a good request then TE identity (refused by the listener, then by the parser)",
    bytes: `GET /1 HTTP/1.1\r\n${H}\r\nDELETE /2 HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n0\r\n\r\n`,
    statuses: [200, 400],
    app: 1,
  },
  {
    name: "pipelined: requests behind one refused with Connection: close are never forwarded",
    bytes: `GET /1 HTTP/1.1\r\n${H}Host: two\r\n\r\nGET /2 HTTP/1.1\r\n${H}\r\n`,
    statuses: [400],
    app: 0,
  },
  {
    name: "pipelined behind Connection: close: never forwarded (RFC 9112 §9.6)",
    bytes: `GET /1 HTTP/1.1\r\n${H}Connection: close\r\n\r\nGET /2 HTTP/1.1\r\n${H}\r\n`,
    statuses: [200],
    app: 1,
    see: (seen) => assert.equal(seen[0].target, "/1"),
  },
  // --- sizes and counts ---
  refused("oversize header", `GET / HTTP/1.1\r\n${H}X-A: ${"a".repeat(70_000)}\r\n\r\n`, 431),
  refused("oversize head from many headers", `GET / HTTP/1.1\r\n${H}${"X-A: b\r\n".repeat(3_000)}\r\n`, 431),
  {
    name: "900 tiny headers under the size limit are all forwarded, none dropped",
    bytes: `GET / HTTP/1.1\r\n${H}${"a:b\r\n".repeat(900)}X-Last: 1\r\n\r\n`,
    statuses: [200],
    app: 1,
    see: (seen) => {
      assert.equal(header(seen[0], "a").length, 900);
      assert.deepEqual(header(seen[0], "x-last"), ["1"]);
    },
  },
  // --- other protocols and garbage ---
  refused("HTTP/0.9 request", "GET /\r\n\r\n"),
  refused("HTTP/1.2", `GET / HTTP/1.2\r\n${H}\r\n`),
  refused("HTTP/2.0 in an HTTP/1 request line", `GET / HTTP/2.0\r\n${H}\r\n`),
  // The outbound listener and a PERMISSIVE inbound serve h2c with prior knowledge (h2c-sniff.ts,
  // inbound/protocol-sniffer.ts): there the preface opens an HTTP/2 session. Inside a connection that
  // negotiated http/1.1 (the mTLS edge here) it is a malformed request.
  {
    ...refused("HTTP/2 connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    only: ["inbound-mtls"],
  },
  refused("lower-case method", `get / HTTP/1.1\r\n${H}\r\n`),
  {
    name: "two spaces in the request line (RFC 9112 §3 allows parsing on words)",
    bytes: `GET  /x HTTP/1.1\r\n${H}\r\n`,
    statuses: [200],
    app: 1,
    see: (seen) => assert.equal(seen[0].target, "/x"),
  },
  refused("space in the target", `GET /a b HTTP/1.1\r\n${H}\r\n`),
  refused("extra word in the request line", `GET / HTTP/1.1 x\r\n${H}\r\n`),
  refused("binary garbage", "\x00\x01\x02\x03\r\n\r\n"),
];

test("the smuggling and framing catalogue, on every edge", async (t) => {
  const edges = await startEdgeTargets();
  t.after(() => edges.close());
  // Every mismatch is collected, so one run shows the whole table's state.
  const failures: string[] = [];
  for (const c of CASES) {
    const input = Buffer.from(c.bytes, "latin1");
    for (const edge of c.only ?? EDGES) {
      const where = `${edge}: ${c.name}`;
      edges.app.take();
      const expected = Array.isArray(c.statuses) ? c.statuses : c.statuses[edge];
      const closes = expected.at(-1)! >= 400 && !(c.staysOpen ?? []).includes(edge);
      const final = expected.filter((st) => st >= 200).length;
      const r = await edges.send(edge, input, { responses: closes ? undefined : final });
      const { requests, malformed } = edges.app.take();
      try {
        assert.deepEqual(r.statuses, expected, `got ${JSON.stringify(r.text.slice(0, 160))}`);
        // Refusals close the connection; served requests leave it open for the next one.
        if (closes) assert.ok(r.closedByServer, "connection left open");
        if (c.reply !== undefined) assert.match(r.text, c.reply);
        if (expected.at(-1)! >= 400) assert.match(r.text, /\r\nx-weft-error: [a-z_]+\r\n/, "a local reply");
        assert.equal(requests.length, c.app, "requests the app saw");
        assert.deepEqual(differentialViolations(input, requests, malformed).violations, []);
        if (c.see !== undefined && requests.length > 0) c.see(requests, edge);
      } catch (err) {
        failures.push(`${where}: ${(err as Error).message.split("\n").slice(0, 6).join(" ")}`);
      }
    }
  }
  assert.deepEqual(failures, []);
  // Every refusal is a counted local reply (outbound: one per case that ends in a 4xx/5xx).
  const refusals = CASES.filter((c) => {
    if (c.only !== undefined && !c.only.includes("outbound")) return false;
    const st = Array.isArray(c.statuses) ? c.statuses : c.statuses.outbound;
    return st.at(-1)! >= 400;
  }).length;
  const text = edges.outbound.metrics.render();
  const counted = ["bad_request", "headers_too_large", "unsupported"]
    .map((code) => metricValue(text, "weft_local_replies_total", { direction: "outbound", code }) ?? 0)
    .reduce((a, b) => a + b, 0);
  assert.equal(counted, refusals);
});

test("HTTP/1.0 without Host is fine in absolute-form", async (t) => {
  const edges = await startEdgeTargets();
  t.after(() => edges.close());
  const r = await edges.send("outbound", Buffer.from("GET http://app/x HTTP/1.0\r\n\r\n"), { responses: 1 });
  assert.deepEqual(r.statuses, [200]);
  assert.equal(edges.app.take().requests[0].target, "/x");
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
