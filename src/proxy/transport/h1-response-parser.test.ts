import { test } from "node:test";
import assert from "node:assert/strict";
import { H1ResponseParser, ProtocolError } from "./h1-response-parser.ts";

interface Parsed {
  heads: { status: number; headers: string[]; text: string }[];
  body: string;
  ended: number;
  trailers: string[] | null;
}

function parser(): { p: H1ResponseParser; out: Parsed } {
  const out: Parsed = { heads: [], body: "", ended: 0, trailers: null };
  const p = new H1ResponseParser({
    onHead: (status, headers, text) => out.heads.push({ status, headers, text }),
    onBody: (c) => (out.body += c.toString("latin1")),
    onEnd: (t) => {
      out.ended++;
      out.trailers = t;
    },
  });
  return { p, out };
}

/** Feeds `wire` in every possible two-piece split and byte by byte; each must parse the same. */
function parseAllSplits(wire: string, isHead = false): Parsed[] {
  const results: Parsed[] = [];
  const bytes = Buffer.from(wire, "latin1");
  for (let cut = 0; cut <= bytes.length; cut++) {
    const { p, out } = parser();
    p.expect(isHead);
    p.feed(bytes.subarray(0, cut));
    p.feed(bytes.subarray(cut));
    results.push(out);
  }
  const { p, out } = parser();
  p.expect(isHead);
  for (let i = 0; i < bytes.length; i++) p.feed(bytes.subarray(i, i + 1));
  results.push(out);
  return results;
}

test("Content-Length bodies, split anywhere", () => {
  for (const r of parseAllSplits("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello")) {
    assert.equal(r.heads.length, 1);
    assert.equal(r.heads[0].status, 200);
    assert.deepEqual(r.heads[0].headers, ["Content-Length", "5", "X-A", "b"]);
    assert.equal(r.body, "hello");
    assert.equal(r.ended, 1);
  }
});

test("chunked bodies with extensions and trailers, split anywhere", () => {
  const wire =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\n\r\n";
  for (const r of parseAllSplits(wire)) {
    assert.equal(r.body, "hello world");
    assert.equal(r.ended, 1);
    assert.deepEqual(r.trailers, ["grpc-status", "0"]);
  }
});

test("1xx responses are skipped; HEAD, 204 and 304 have no body; no framing means until close", () => {
  for (const r of parseAllSplits(
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
  )) {
    assert.deepEqual(
      r.heads.map((h) => h.status),
      [200],
    );
    assert.equal(r.body, "ok");
  }
  for (const r of parseAllSplits("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true))
    assert.equal(r.ended, 1);
  for (const r of parseAllSplits("HTTP/1.1 204 No Content\r\n\r\n")) assert.equal(r.ended, 1);
  for (const r of parseAllSplits("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"))
    assert.equal(r.ended, 1);

  const { p, out } = parser();
  p.expect(false);
  p.feed(Buffer.from("HTTP/1.0 200 OK\r\n\r\nuntil"));
  p.feed(Buffer.from(" close"));
  assert.equal(out.ended, 0);
  assert.ok(p.untilClose);
  assert.equal(p.keepAlive, false);
  p.eof();
  assert.equal(out.body, "until close");
  assert.equal(out.ended, 1);
});

test("keep-alive: Connection: close, HTTP/1.0, and the Keep-Alive timeout hint", () => {
  const cases: [string, boolean, number][] = [
    ["HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=5\r\n\r\n", true, 5000],
    ["HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false, 0],
    ["HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, 0],
    ["HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", true, 0],
  ];
  for (const [wire, keepAlive, hint] of cases) {
    const { p } = parser();
    p.expect(false);
    p.feed(Buffer.from(wire));
    assert.equal(p.keepAlive, keepAlive, wire);
    assert.equal(p.keepAliveHintMs, hint, wire);
  }
});

test("ambiguous or malformed framing is a protocol error", () => {
  const bad = [
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
    "HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nBad Name: b\r\n\r\n",
    "HTTP/2 200\r\n\r\n",
    "garbage\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
  ];
  for (const wire of bad) {
    const { p } = parser();
    p.expect(false);
    assert.throws(() => p.feed(Buffer.from(wire, "latin1")), ProtocolError, JSON.stringify(wire));
  }
  const { p } = parser();
  p.expect(false);
  p.feed(Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"));
  assert.throws(() => p.eof(), /mid-response/);
  const huge = parser();
  huge.p.expect(false);
  assert.throws(() => huge.p.feed(Buffer.from(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(70_000)}`)), /too large/);
});
