// Inbound protocol detection for plaintext (PERMISSIVE) clients, whose protocol nothing declares:
// the h2 preface, HTTP/1.x, opaque bytes and a silent client (server speaks first), with real
// clients — and the bounds: a client stopped inside the preface is not waited for, STRICT serves none.

import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { metricValue, startInbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { classify } from "./protocol-sniffer.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());
const APP = sid("reviews");
const appProxy = { service: "reviews", namespace: "default", identity: APP };
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

test("classify: TLS, the whole h2 preface, HTTP/1 methods, opaque bytes; a preface prefix needs more", () => {
  assert.equal(classify(Buffer.from([0x16, 3, 1])), "tls");
  assert.equal(classify(Buffer.from(PREFACE)), "h2");
  assert.equal(classify(Buffer.from(PREFACE.slice(0, 10))), undefined);
  assert.equal(classify(Buffer.from("PRI * HTTP/1.1\r\n")), "http1"); // not the preface: a method
  assert.equal(classify(Buffer.from("GET / HTTP/1.1\r\n")), "http1");
  assert.equal(classify(Buffer.from("get / HTTP/1.1\r\n")), "opaque");
  assert.equal(classify(Buffer.from([0, 1, 2, 3])), "opaque");
  assert.equal(classify(Buffer.from("*3\r\n$3\r\nSET\r\n")), "opaque"); // RESP (redis)
});

/** A TCP app that greets first and echoes what it gets. */
async function greetingApp(t: test.TestContext): Promise<{ port: number; got: Buffer[] }> {
  const got: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.write("220 hello\r\n");
    s.on("data", (d) => {
      got.push(d);
      s.write(d);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as net.AddressInfo).port, got };
}

/** Reads until `re` matches what arrived so far (or the socket closes); the socket stays open. */
function readUntil(socket: net.Socket, re: RegExp): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    const done = () => {
      socket.removeListener("data", onData);
      socket.removeListener("close", done);
      resolve(text);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (re.test(text)) done();
    };
    socket.on("data", onData);
    socket.on("close", done);
    socket.on("error", () => {});
  });
}

test("PERMISSIVE: h2 with prior knowledge from a plaintext client is served as HTTP/2", async (t) => {
  const app = await startApp("reviews");
  const p = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: appProxy, mtlsMode: "PERMISSIVE" }),
    await ca.material(APP),
  );
  const client = http2.connect(`http://127.0.0.1:${p.port}`);
  t.after(() => Promise.all([client.close(), p.close(), app.close()]));
  const req = client.request({ ":path": "/over-h2", ":authority": "reviews" });
  const [headers] = (await once(req, "response")) as [http2.IncomingHttpHeaders];
  req.resume();
  await once(req, "end");
  assert.equal(headers[":status"], 200);
  assert.equal(app.seen.at(-1)?.url, "/over-h2");
});

test("PERMISSIVE: opaque bytes and a silent client reach the app's port as TCP; the app may speak first", async (t) => {
  const app = await greetingApp(t);
  const p = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: appProxy, mtlsMode: "PERMISSIVE" }),
    await ca.material(APP),
    { detectTimeoutMs: 100 },
  );
  t.after(() => p.close());

  // Silent: nothing is sent until the app's greeting arrived (after the detection timeout).
  const silent = net.connect(p.port, "127.0.0.1");
  t.after(() => silent.destroy());
  assert.match(await readUntil(silent, /220 hello\r\n/), /^220 hello\r\n$/);
  silent.write("*1\r\n$4\r\nPING\r\n");
  assert.match(await readUntil(silent, /PING/), /PING/);

  // Opaque from the first byte: passed on unchanged.
  const opaque = net.connect(p.port, "127.0.0.1");
  t.after(() => opaque.destroy());
  opaque.write(Buffer.from([0, 1, 2, 0xff]));
  const echoed = await readUntil(opaque, /\u00ff/);
  assert.ok(echoed.endsWith("\x00\x01\x02\xff"), JSON.stringify(echoed));
  assert.ok(
    (metricValue(p.metrics.render(), "weft_tcp_connections_opened_total", { direction: "inbound" }) ?? 0) >=
      2,
  );
});

test("a client stopped inside the h2 preface is not waited for (opaque after the detection timeout)", async (t) => {
  const app = await greetingApp(t);
  const p = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: appProxy, mtlsMode: "PERMISSIVE" }),
    await ca.material(APP),
    { detectTimeoutMs: 100 },
  );
  t.after(() => p.close());
  const c = net.connect(p.port, "127.0.0.1");
  t.after(() => c.destroy());
  c.write("PRI * HTTP/2.0\r\n");
  const text = await readUntil(c, /PRI \* HTTP\/2\.0\r\n$/);
  assert.match(text, /^220 hello\r\nPRI \* HTTP\/2\.0\r\n$/);
  assert.equal(Buffer.concat(app.got).toString(), "PRI * HTTP/2.0\r\n");
});

test("STRICT: plaintext h2, opaque and silent clients are closed; the app sees nothing", async (t) => {
  const app = await greetingApp(t);
  const p = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: appProxy }),
    await ca.material(APP),
    { detectTimeoutMs: 50, limits: { handshakeTimeoutMs: 300 } },
  );
  t.after(() => p.close());
  for (const bytes of [PREFACE, "\x00\x01", ""]) {
    const c = net.connect(p.port, "127.0.0.1");
    if (bytes !== "") c.write(bytes);
    const text = await readUntil(c, /never/);
    assert.equal(text, "", `nothing answers ${JSON.stringify(bytes)}`);
  }
  assert.equal(app.got.length, 0);
  assert.equal(
    metricValue(p.metrics.render(), "weft_tls_handshake_failures_total", { reason: "plaintext" }),
    2,
  );
});
