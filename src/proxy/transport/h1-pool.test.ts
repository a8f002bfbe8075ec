import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { Readable } from "node:stream";
import { H1Pool } from "./h1-pool.ts";
import type { Connector } from "./connector.ts";
import type { UpstreamRequest } from "./upstream.ts";

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

test("a request on a keep-alive connection the upstream dropped is retried once on a new one (GET), not a POST", async (t) => {
  // The upstream answers the first request on each connection and silently drops the connection on the second.
  const up = await rawServer((_h, s, n) => (n === 0 ? s.write(OK) : s.destroy()));
  const pool = new H1Pool(plainConnector(up.port), {
    keepAliveTimeoutMs: 10_000,
    keepAliveMaxTimeoutMs: 60_000,
  });
  t.after(() => Promise.all([pool.destroy(), up.close()]));
  assert.deepEqual(await run(pool, req()), { status: 200, body: "ok" });
  assert.deepEqual(await run(pool, req()), { status: 200, body: "ok" }, "retried transparently");
  assert.equal(up.sockets.length, 2);
  const post = await run(
    pool,
    req({
      method: "POST",
      headers: ["host", "x", "content-length", "2"],
      body: Readable.from([Buffer.from("hi")]),
    }),
  );
  assert.deepEqual(post, { error: "WEFT_ERR_UPSTREAM_CLOSED" }, "a request with a body is never replayed");
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
