import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { Readable } from "node:stream";
import { notSentOutcome } from "../outbound/outcomes.ts";
import { H1Connection } from "./h1-connection.ts";
import { H1Pool } from "./h1-pool.ts";
import type { Connector } from "./connector.ts";
import { requestNotSent, type UpstreamRequest } from "./upstream.ts";

/** A raw upstream: `respond` gets each request head (as text) and the socket. */
async function rawServer(respond: (head: string, socket: net.Socket, n: number) => void) {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    let buf = "";
    let n = 0;
    socket.on("error", () => {});
    socket.on("data", (d) => {
      buf += d.toString("latin1");
      let end: number;
      while ((end = buf.indexOf("\r\n\r\n")) !== -1) {
        const head = buf.slice(0, end);
        const cl = /content-length: (\d+)/i.exec(head);
        const bodyLen = cl ? Number(cl[1]) : 0;
        if (buf.length < end + 4 + bodyLen) return;
        buf = buf.slice(end + 4 + bodyLen);
        respond(head, socket, n++);
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function plainConnector(port: number): Connector {
  return (_opts, cb) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => cb(null, s));
    s.once("error", (e) => cb(e, null));
  };
}

function req(extra: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    path: "/",
    headers: ["host", "x"],
    body: null,
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
    ...extra,
  };
}

function run(
  pool: H1Pool,
  r: UpstreamRequest,
): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    let status = 0;
    let body = "";
    pool.dispatch(r, {
      onConnect: () => {},
      onHeaders: (s) => ((status = s), true),
      onData: (c) => ((body += c.toString()), true),
      onComplete: () => resolve({ status, body }),
      onError: (e) => resolve({ error: (e as { code?: string }).code ?? e.message }),
    });
  });
}

/** Runs a request that must fail; resolves with its error. */
function runWithError(
  pool: H1Pool,
  r: UpstreamRequest,
): Promise<Error & { code?: string; requestSent?: boolean }> {
  return new Promise((resolve, reject) => {
    pool.dispatch(r, {
      onConnect: () => {},
      onHeaders: (s) => (reject(new Error(`unexpected response ${s}`)), false),
      onData: () => true,
      onComplete: () => reject(new Error("unexpected completion")),
      onError: (e) => resolve(e as Error & { code?: string; requestSent?: boolean }),
    });
  });
}

const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

test("sequential requests share one keep-alive connection; concurrent ones open more", async (t) => {
  const up = await rawServer((_h, s) => s.write(OK));
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  t.after(() => Promise.all([pool.destroy(), up.close()]));
  for (let i = 0; i < 3; i++) assert.deepEqual(await run(pool, req()), { status: 200, body: "ok" });
  assert.equal(up.sockets.length, 1);
  await Promise.all([run(pool, req()), run(pool, req()), run(pool, req())]);
  assert.equal(up.sockets.length, 3);
  assert.equal(pool.idleConnections, 3);
});

test("a request on a reused connection that the upstream drops is never sent again: the error says it may have been received", async (t) => {
  // The upstream answers the first request on each connection and drops the connection on the second
  // (as an app that crashed on it would): the proxy cannot know whether it was processed.
  const up = await rawServer((_h, s, n) => (n === 0 ? s.write(OK) : s.destroy()));
  const heads: string[] = [];
  const counting = await rawServer((h, s, n) => {
    heads.push(h);
    if (n === 0) s.write(OK);
    else s.destroy();
  });
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  const pool2 = new H1Pool(plainConnector(counting.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  t.after(() => Promise.all([pool.destroy(), pool2.destroy(), up.close(), counting.close()]));
  assert.deepEqual(await run(pool, req()), { status: 200, body: "ok" });
  for (const method of ["GET", "PUT", "DELETE"]) {
    const before = up.sockets.length;
    const failed = await runWithError(pool, req({ method }));
    assert.equal(failed.code, "WEFT_ERR_UPSTREAM_CLOSED", method);
    assert.equal(failed.requestSent, true, `${method}: sent, outcome unknown`);
    assert.equal(up.sockets.length, before, `${method}: no new connection to send it again`);
    assert.deepEqual(
      await run(pool, req()),
      { status: 200, body: "ok" },
      "the next request gets a fresh one",
    );
  }
  // The upstream sees each request once.
  await run(pool2, req());
  await runWithError(pool2, req({ path: "/once" }));
  assert.equal(heads.filter((h) => h.startsWith("GET /once ")).length, 1);
});

test("a response timeout on a reused connection is reported, not re-sent: the upstream sees the request once", async (t) => {
  const heads: string[] = [];
  const up = await rawServer((h, s) => {
    heads.push(h);
    if (!h.includes(" /slow ")) s.write(OK); // /slow never answers
  });
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  t.after(() => Promise.all([pool.destroy(), up.close()]));
  assert.deepEqual(await run(pool, req()), { status: 200, body: "ok" });
  const failed = await runWithError(pool, req({ method: "PUT", path: "/slow", headersTimeout: 50 }));
  assert.equal(failed.code, "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT");
  assert.equal(failed.requestSent, true);
  assert.match(failed.message, /within 50 ms/);
  assert.equal(heads.filter((h) => h.startsWith("PUT /slow ")).length, 1);
  assert.equal(up.sockets.length, 1, "no new connection was opened to send it again");
});

test("a refused connection fails with requestSent = false: nothing left the proxy", async (t) => {
  const up = await rawServer(() => {});
  const port = up.port;
  up.close();
  const pool = new H1Pool(plainConnector(port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  t.after(() => pool.destroy());
  const failed = await runWithError(pool, req({ method: "POST" }));
  assert.equal(failed.requestSent, false);
  assert.equal(requestNotSent(failed), true);
});

test("timeouts: no response head in time; a stalled body", async (t) => {
  const up = await rawServer((h, s) => {
    if (h.startsWith("GET /stall")) s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  });
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  t.after(() => Promise.all([pool.destroy(), up.close()]));
  assert.deepEqual(await run(pool, req({ headersTimeout: 100 })), {
    error: "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT",
  });
  assert.deepEqual(await run(pool, req({ path: "/stall", bodyTimeout: 100 })), {
    error: "WEFT_ERR_UPSTREAM_BODY_TIMEOUT",
  });
});

test("idle connections close after the upstream's Keep-Alive hint minus a second", async (t) => {
  const up = await rawServer((_h, s) =>
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=1\r\n\r\nok"),
  );
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  t.after(() => Promise.all([pool.destroy(), up.close()]));
  await run(pool, req());
  assert.equal(pool.connections, 0, "hint 1 s - 1 s margin: not kept at all");
});

test("chunked request bodies stream out; the response may arrive before the request body ends", async (t) => {
  const up = await rawServer((h, s) => {
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${h.length}\r\n\r\n${h}`);
  });
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  t.after(() => Promise.all([pool.destroy(), up.close()]));
  const body = new Readable({ read() {} });
  const pending = run(pool, req({ method: "POST", body }));
  body.push("abc");
  const r = await pending;
  assert.ok("status" in r);
  assert.match(r.body, /^POST \/ HTTP\/1.1\r\nhost: x\r\ntransfer-encoding: chunked$/);
  body.push(null);
  assert.equal(pool.idleConnections, 0, "not reused while its request body was unfinished");
});

test("circuit breaker: at maxConnections requests wait in a bounded FIFO; past maxPendingRequests they are refused at once", async (t) => {
  const held: net.Socket[] = [];
  const up = await rawServer((_h, s) => held.push(s)); // answers only when the test says so
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  pool.setLimits(1, 1);
  t.after(() => Promise.all([pool.destroy(), up.close()]));
  const first = run(pool, req({ path: "/1" }));
  const second = run(pool, req({ path: "/2" }));
  const third = await run(pool, req({ path: "/3" }));
  assert.deepEqual(third, { error: "WEFT_ERR_CIRCUIT_OPEN" }, "the queue holds one: the third is refused");
  assert.equal(pool.pending, 1);
  while (held.length < 1) await new Promise((r) => setTimeout(r, 5));
  held[0].write(OK);
  assert.deepEqual(await first, { status: 200, body: "ok" });
  // The waiting request runs on the connection the first one freed: still one connection.
  while (held.length < 2) await new Promise((r) => setTimeout(r, 5));
  held[1].write(OK);
  assert.deepEqual(await second, { status: 200, body: "ok" });
  assert.equal(up.sockets.length, 1);
  assert.equal(pool.pending, 0);
});

test("circuit breaker: a waiting request that is cancelled leaves the queue", async (t) => {
  const up = await rawServer(() => {});
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  pool.setLimits(1, 5);
  t.after(() => Promise.all([pool.destroy(), up.close()]));
  void run(pool, req());
  let abort: ((e?: Error) => void) | undefined;
  const waited = new Promise<string>((resolve) =>
    pool.dispatch(req(), {
      onConnect: (a) => (abort = a),
      onHeaders: () => true,
      onData: () => true,
      onComplete: () => resolve("complete"),
      onError: (e) => resolve(e.message),
    }),
  );
  assert.equal(pool.pending, 1);
  abort!(new Error("client went away"));
  assert.equal(await waited, "client went away");
  assert.equal(pool.pending, 0);
});

test("circuit breaker: connections opened before a lower maxConnections are shed, so reuse never exceeds it", async (t) => {
  const up = await rawServer((_h, s) => s.write(OK));
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  t.after(() => Promise.all([pool.destroy(), up.close()]));
  await Promise.all([run(pool, req()), run(pool, req()), run(pool, req())]);
  assert.equal(pool.idleConnections, 3);
  pool.setLimits(1, 5);
  assert.equal(pool.connections, 1, "idle connections beyond the limit are closed");
  const results = await Promise.all([run(pool, req()), run(pool, req()), run(pool, req())]);
  assert.deepEqual(results, Array(3).fill({ status: 200, body: "ok" }));
  assert.equal(pool.connections, 1, "the three requests took turns on one connection");
});

test("a connection found closed before the request is written fails it with requestSent = false", async (t) => {
  const up = await rawServer((_h, s) => s.write(OK));
  t.after(() => up.close());
  const socket = net.connect(up.port, "127.0.0.1");
  await once(socket, "connect");
  const conn = new H1Connection({ release: () => {}, remove: () => {} }, socket);
  socket.end(); // our side is closed: nothing more can be written
  const err = await new Promise<Error & { code?: string; requestSent?: boolean }>((resolve, reject) =>
    conn.run(req({ method: "POST" }), {
      onConnect: () => {},
      onHeaders: () => (reject(new Error("unexpected response")), false),
      onData: () => true,
      onComplete: () => reject(new Error("unexpected completion")),
      onError: (e) => resolve(e),
    }),
  );
  assert.equal(err.code, "WEFT_ERR_UPSTREAM_CLOSED");
  assert.equal(err.requestSent, false);
  assert.equal(notSentOutcome(err), "reset", "another endpoint may take it");
});
