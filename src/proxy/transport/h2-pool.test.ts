import { test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { Readable } from "node:stream";
import type { Connector } from "./connector.ts";
import { H2Pool } from "./h2-pool.ts";
import type { UpstreamHandler, UpstreamRequest } from "./upstream.ts";

type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/** A node:http2 h2c server; counts TCP connections and the most streams open at once. */
async function h2Server(onStream: StreamHandler, settings: http2.Settings = {}) {
  const server = http2.createServer({ settings });
  const sockets: net.Socket[] = [];
  let open = 0;
  const stats = { connections: 0, maxOpen: 0 };
  server.on("connection", (s: net.Socket) => {
    stats.connections++;
    sockets.push(s);
  });
  server.on("stream", (stream, headers) => {
    open++;
    stats.maxOpen = Math.max(stats.maxOpen, open);
    stream.on("close", () => open--);
    stream.on("error", () => {});
    onStream(stream, headers);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    stats,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function connector(port: number): Connector {
  return (_opts, cb) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => cb(null, s));
    s.once("error", (e) => cb(e, null));
  };
}

function pool(port: number, extra: Partial<ConstructorParameters<typeof H2Pool>[1]> = {}): H2Pool {
  return new H2Pool(connector(port), { scheme: "http", authority: `127.0.0.1:${port}`, ...extra });
}

function req(extra: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    path: "/",
    headers: ["host", "svc"],
    body: null,
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
    ...extra,
  };
}

interface Result {
  status?: number;
  headers?: (Buffer | string)[];
  body?: string;
  trailers?: (Buffer | string)[] | null;
  error?: Error & { code?: string; requestSent?: boolean };
}

function run(p: H2Pool, r: UpstreamRequest, handler: Partial<UpstreamHandler> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const out: Result = { body: "" };
    p.dispatch(r, {
      onConnect: () => {},
      onHeaders: (s, h) => ((out.status = s), (out.headers = h), true),
      onData: (c) => ((out.body += c.toString()), true),
      onComplete: (t) => resolve({ ...out, trailers: t }),
      onError: (e) => resolve({ error: e as Result["error"] }),
      ...handler,
    });
  });
}

test("concurrent requests are multiplexed over one session: one TCP connection, h1 headers converted", async (t) => {
  const seen: http2.IncomingHttpHeaders[] = [];
  const up = await h2Server((stream, headers) => {
    seen.push(headers);
    stream.respond({ ":status": 201, "x-app": "yes" });
    stream.end(`hello ${headers[":path"]}`);
  });
  const p = pool(up.port);
  t.after(() => Promise.all([p.destroy(), up.close()]));
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      run(
        p,
        req({
          path: `/r${i}`,
          headers: [
            "Host",
            "svc:80",
            "Connection",
            "keep-alive",
            "TE",
            "trailers",
            "X-Multi",
            "a",
            "x-multi",
            "b",
          ],
        }),
      ),
    ),
  );
  results.forEach((r, i) => {
    assert.equal(r.status, 201);
    assert.equal(r.body, `hello /r${i}`);
    assert.deepEqual(r.headers?.slice(0, 2), ["x-app", "yes"]);
  });
  assert.equal(up.stats.connections, 1, "one TCP connection for 50 requests");
  assert.equal(p.opened, 1);
  assert.equal(seen[0][":authority"], "svc:80");
  assert.equal(seen[0].connection, undefined);
  assert.equal(seen[0].te, "trailers");
  assert.equal(seen[0]["x-multi"], "a, b");
});

test("response trailers reach onComplete (grpc-status)", async (t) => {
  const up = await h2Server((stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "fine" }));
    stream.end("x");
  });
  const p = pool(up.port);
  t.after(() => Promise.all([p.destroy(), up.close()]));
  const r = await run(p, req());
  assert.deepEqual(r.trailers, ["grpc-status", "0", "grpc-message", "fine"]);
});

test("the peer's SETTINGS_MAX_CONCURRENT_STREAMS is respected; the queue is bounded and then refuses (not sent)", async (t) => {
  const held: http2.ServerHttp2Stream[] = [];
  const up = await h2Server((stream) => held.push(stream), { maxConcurrentStreams: 2 });
  const p = pool(up.port, { maxSessions: 1, maxPending: 3 });
  t.after(() => Promise.all([p.destroy(), up.close()]));
  // The session must know the peer's limit before the burst (the first request learns it).
  const first = run(p, req());
  while (held.length === 0) await new Promise((r) => setImmediate(r));
  held.shift()?.respond({ ":status": 200 }, { endStream: true });
  assert.equal((await first).status, 200);

  const pending = Array.from({ length: 5 }, () => run(p, req()));
  const refused = await run(p, req());
  assert.equal(refused.error?.code, "WEFT_ERR_CIRCUIT_OPEN");
  assert.equal(refused.error?.requestSent, false);
  assert.equal(p.pending, 3);
  // Answer streams as they arrive: never more than two are open on the server.
  let answered = 0;
  while (answered < 5) {
    const s = held.shift();
    if (s === undefined) {
      await new Promise((r) => setImmediate(r));
      continue;
    }
    s.respond({ ":status": 200 }, { endStream: true });
    answered++;
  }
  for (const r of await Promise.all(pending)) assert.equal(r.status, 200);
  assert.equal(up.stats.maxOpen, 2);
  assert.equal(up.stats.connections, 1);
});

test("GOAWAY mid-flight: streams above its last stream id fail as not sent, kept ones finish, new requests get a new session", async (t) => {
  let n = 0;
  const up = await h2Server((stream) => {
    if (++n === 1) {
      // Stream 1 is kept; 3 and 5 (already on their way) are not processed.
      stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
      setImmediate(() => stream.respond({ ":status": 200 }, { endStream: true }));
      return;
    }
    if (n <= 3) return; // 3 and 5 are refused by the GOAWAY above
    stream.respond({ ":status": 204 }, { endStream: true });
  });
  const p = pool(up.port);
  t.after(() => Promise.all([p.destroy(), up.close()]));
  const [a, b, c] = await Promise.all([run(p, req()), run(p, req()), run(p, req())]);
  assert.equal(a.status, 200);
  for (const r of [b, c]) {
    assert.equal(r.error?.code, "WEFT_ERR_UPSTREAM_CLOSED");
    assert.equal(r.error?.requestSent, false, "above GOAWAY's last stream id: may go elsewhere");
  }
  assert.equal((await run(p, req())).status, 204);
  assert.equal(p.opened, 2, "a new session after GOAWAY");
});

test("RST_STREAM REFUSED_STREAM is not-sent; any other reset after the request went is sent", async (t) => {
  let n = 0;
  const up = await h2Server((stream) => {
    if (++n === 1) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    else {
      stream.respond({ ":status": 200 });
      // destroy() resets (INTERNAL_ERROR); close(code) would end the stream cleanly first.
      stream.write("partial", () => stream.destroy(new Error("app crashed")));
    }
  });
  const p = pool(up.port);
  t.after(() => Promise.all([p.destroy(), up.close()]));
  const refused = await run(p, req());
  assert.equal(refused.error?.requestSent, false);
  assert.match(refused.error?.message ?? "", /REFUSED_STREAM/);
  const reset = await run(p, req());
  assert.equal(reset.error?.code, "WEFT_ERR_UPSTREAM_CLOSED");
  assert.equal(reset.error?.requestSent, true);
  assert.match(reset.error?.message ?? "", /mid-response \(INTERNAL_ERROR\)/);
});

test("no response headers within headersTimeout: WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT and the stream is cancelled", async (t) => {
  const closed: number[] = [];
  const up = await h2Server((stream) => stream.on("close", () => closed.push(stream.rstCode ?? -1)));
  const p = pool(up.port);
  t.after(() => Promise.all([p.destroy(), up.close()]));
  const r = await run(p, req({ headersTimeout: 30 }));
  assert.equal(r.error?.code, "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT");
  while (closed.length === 0) await new Promise((res) => setImmediate(res));
  assert.equal(closed[0], http2.constants.NGHTTP2_CANCEL);
});

test("a handler that stops reading stops the upstream by flow control (nothing buffers in the proxy)", async (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024, 120);
  let serverStream: http2.ServerHttp2Stream | undefined;
  const up = await h2Server((stream) => {
    serverStream = stream;
    stream.respond({ ":status": 200 });
    stream.end(big);
  });
  const sockets: net.Socket[] = [];
  const connect = connector(up.port);
  const p = new H2Pool((o, cb) => connect(o, (err, sock) => (sock && sockets.push(sock), cb(err, sock))), {
    scheme: "http",
    authority: "svc",
  });
  t.after(() => Promise.all([p.destroy(), up.close()]));
  let received = 0;
  let paused = false;
  let resume: (() => void) | undefined;
  let onPaused!: () => void;
  const pausedOnce = new Promise<void>((r) => (onPaused = r));
  const done = run(p, req(), {
    onHeaders: (_s, _h, r) => ((resume = r), true),
    onData: (c) => {
      received += c.length;
      if (paused || received < 64 * 1024) return true;
      paused = true;
      onPaused();
      return false;
    },
  });
  await pausedOnce;
  // PING round trips on the same connection: what the upstream could send has arrived by then
  // (without flow control the whole body crosses loopback within a few of them).
  const s = serverStream as http2.ServerHttp2Stream;
  for (let i = 0; i < 50; i++) await new Promise((r) => s.session?.ping(r));
  const wire = sockets[0].bytesRead;
  assert.ok(wire < 512 * 1024, `the proxy's socket read ${wire} bytes while its reader was paused`);
  resume?.();
  await done;
  assert.equal(received, big.length);
});

test("the request body streams with back-pressure and arrives whole", async (t) => {
  const up = await h2Server((stream) => {
    let n = 0;
    stream.on("data", (c: Buffer) => (n += c.length));
    stream.on("end", () => {
      stream.respond({ ":status": 200 });
      stream.end(String(n));
    });
  });
  const p = pool(up.port);
  t.after(() => Promise.all([p.destroy(), up.close()]));
  const chunk = Buffer.alloc(64 * 1024, 97);
  const body = Readable.from(
    (function* () {
      for (let i = 0; i < 80; i++) yield chunk;
    })(),
  );
  const r = await run(
    p,
    req({ method: "POST", body, headers: ["host", "svc", "transfer-encoding", "chunked"] }),
  );
  assert.equal(r.body, String(80 * 64 * 1024));
});

test("a closed pool refuses at once (not sent); close() waits for in-flight streams", async (t) => {
  let held: http2.ServerHttp2Stream | undefined;
  const up = await h2Server((stream) => (held = stream));
  const p = pool(up.port);
  t.after(() => Promise.all([p.destroy(), up.close()]));
  const inflight = run(p, req());
  while (held === undefined) await new Promise((r) => setImmediate(r));
  let closed = false;
  const closing = p.close().then(() => (closed = true));
  const refused = await run(p, req());
  assert.equal(refused.error?.code, "WEFT_ERR_POOL_CLOSED");
  assert.equal(refused.error?.requestSent, false);
  assert.equal(closed, false);
  held.respond({ ":status": 200 }, { endStream: true });
  assert.equal((await inflight).status, 200);
  await closing;
});

test("maxConnections bounds requests in flight over h2 as over HTTP/1.1; past maxPending they are refused", async (t) => {
  const held: http2.ServerHttp2Stream[] = [];
  const up = await h2Server((stream) => held.push(stream));
  const p = pool(up.port);
  p.setLimits(2, 1);
  t.after(() => Promise.all([p.destroy(), up.close()]));
  const running = [run(p, req()), run(p, req()), run(p, req())];
  const refused = await run(p, req());
  assert.equal(refused.error?.code, "WEFT_ERR_CIRCUIT_OPEN");
  while (held.length < 2) await new Promise((r) => setImmediate(r));
  assert.equal(p.pending, 1, "the third waits");
  let answered = 0;
  while (answered < 3) {
    const s = held.shift();
    if (s === undefined) {
      await new Promise((r) => setImmediate(r));
      continue;
    }
    s.respond({ ":status": 200 }, { endStream: true });
    answered++;
  }
  for (const r of await Promise.all(running)) assert.equal(r.status, 200);
  assert.equal(up.stats.maxOpen, 2);
});
