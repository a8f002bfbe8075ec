// WebSocket end to end with real peers nobody here wrote: the `ws` server as the app behind a real
// sidecar pair (mTLS between them), reached by the `ws` client, by Node's built-in WebSocket (through
// HTTP_PROXY, where undici tunnels with CONNECT, and on an --upstream port), by a raw absolute-form
// client and by curl --proxy.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { promisify } from "node:util";
import { WebSocket } from "ws";
import { createTestCa, sid } from "../testing/certs.ts";
import { metricValue, startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { SWITCHING, startRawUpgradeApp, startWsEcho, type UpgradeApp } from "../testing/upgrade-apps.ts";
import type { OutboundListenerOptions } from "../outbound/listener.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());
const WEB = sid("web");
const ECHO = sid("echo");

/** app ← inbound (echo's sidecar) ← mTLS ← outbound (web's sidecar). */
async function pair(
  t: { after(fn: () => unknown): void },
  app: UpgradeApp,
  outboundOpts: Partial<Omit<OutboundListenerOptions, "tls" | "config" | "metrics">> = {},
) {
  const inbound = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: { service: "echo", namespace: "default", identity: ECHO } }),
    await ca.material(ECHO),
  );
  const outbound = await startOutbound(
    buildSnapshot({
      services: [{ name: "echo", port: 80, endpoints: [{ port: inbound.port, identity: ECHO }] }],
    }),
    { tls: await ca.material(WEB), ...outboundOpts },
  );
  t.after(() => Promise.all([outbound.close(), inbound.close(), app.close()]));
  return { inbound, outbound };
}

function nextMessage(ws: WebSocket): Promise<Buffer> {
  return once(ws, "message").then(([m]) => m as Buffer);
}

test("ws through the mTLS sidecar pair: 1000 messages each way, a 10 MB message, the close handshake, metrics on both sides", async (t) => {
  const app = await startWsEcho();
  const { inbound, outbound } = await pair(t, app);

  const ws = new WebSocket(`ws://127.0.0.1:${outbound.port}/chat`, { headers: { host: "echo" } });
  await once(ws, "open");
  const received: string[] = [];
  const all = new Promise<void>((resolve) => {
    const onMessage = (m: Buffer) => {
      received.push(String(m));
      if (received.length === 1000) {
        ws.off("message", onMessage);
        resolve();
      }
    };
    ws.on("message", onMessage);
  });
  for (let i = 0; i < 1000; i++) ws.send(`message ${i}`);
  await all;
  assert.deepEqual(
    received,
    Array.from({ length: 1000 }, (_, i) => `message ${i}`),
  );

  const big = Buffer.alloc(10 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  const echoed = nextMessage(ws);
  ws.send(big);
  const back = await echoed;
  assert.equal(back.length, big.length);
  assert.equal(
    createHash("sha256").update(back).digest("hex"),
    createHash("sha256").update(big).digest("hex"),
  );

  ws.close(4001, "done here");
  const [code, reason] = await once(ws, "close");
  assert.equal(code, 4001, "the app's close frame came back through both sidecars");
  assert.equal(String(reason), "done here");
  await app.allClosed();

  assert.equal(app.upgrades[0].headers["x-forwarded-client-cert"], `By=${ECHO};URI=${WEB}`);
  const out = outbound.metrics.render();
  const labels = { direction: "outbound", destination_service: "echo.default", protocol: "websocket" };
  assert.equal(metricValue(out, "weft_upgrades_total", { ...labels, outcome: "101" }), 1);
  assert.ok(metricValue(out, "weft_upgrade_received_bytes_total", labels)! > big.length);
  assert.ok(metricValue(out, "weft_upgrade_sent_bytes_total", labels)! > big.length);
  assert.equal(metricValue(out, "weft_requests_total", { direction: "outbound", response_code: "101" }), 1);
  const inb = inbound.metrics.render();
  assert.equal(
    metricValue(inb, "weft_upgrades_total", {
      direction: "inbound",
      source_service: "web.default",
      destination_service: "echo.default",
      outcome: "101",
    }),
    1,
  );
});

test("Node's built-in WebSocket through HTTP_PROXY (undici tunnels it with CONNECT) reaches the app across the pair", async (t) => {
  const app = await startWsEcho();
  const { outbound } = await pair(t, app);
  const script = `
    const w = new WebSocket("ws://echo/native?x=1");
    w.onopen = () => w.send("ping from undici");
    w.onmessage = (e) => { console.log(e.data); w.close(1000); };
    w.onclose = (e) => { console.log("closed " + e.code); process.exit(0); };
    w.onerror = () => { console.log("error"); process.exit(1); };`;
  const child = spawn(process.execPath, ["-e", script], {
    env: { ...process.env, NODE_USE_ENV_PROXY: "1", HTTP_PROXY: `http://127.0.0.1:${outbound.port}` },
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.after(() => child.kill());
  let stdout = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c));
  const [status] = await once(child, "exit");
  assert.equal(stdout, "ping from undici\nclosed 1000\n");
  assert.equal(status, 0);
  assert.equal(app.upgrades[0].url, "/native?x=1");
});

test("Node's built-in WebSocket on an --upstream port", async (t) => {
  const app = await startWsEcho();
  const inbound = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: { service: "echo", namespace: "default", identity: ECHO } }),
    await ca.material(ECHO),
  );
  const upstreamPort = await startOutbound(
    buildSnapshot({ services: [{ name: "echo", endpoints: [{ port: inbound.port, identity: ECHO }] }] }),
    { tls: await ca.material(WEB), upstream: "echo" },
  );
  t.after(() => Promise.all([upstreamPort.close(), inbound.close(), app.close()]));
  const w = new globalThis.WebSocket(`ws://127.0.0.1:${upstreamPort.port}/up`);
  w.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => {
    w.onopen = resolve;
    w.onerror = () => reject(new Error("WebSocket failed"));
  });
  const got = new Promise<string>((resolve) => (w.onmessage = (e) => resolve(String(e.data))));
  w.send("over the upstream port");
  assert.equal(await got, "over the upstream port");
  const closed = new Promise<number>((resolve) => (w.onclose = (e) => resolve(e.code)));
  w.close(1000);
  assert.equal(await closed, 1000);
});

/** A masked client text frame (RFC 6455 §5.2), payload < 126 bytes. */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x81;
  frame[1] = 0x80 | payload.length;
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i] ^ mask[i % 4];
  return frame;
}

test("absolute-form from an HTTP_PROXY client: the handshake and a frame sent in the same write as the head", async (t) => {
  const app = await startWsEcho();
  const { outbound } = await pair(t, app);
  const socket = net.connect(outbound.port, "127.0.0.1");
  t.after(() => socket.destroy());
  await once(socket, "connect");
  socket.write(
    "GET http://echo/raw HTTP/1.1\r\nHost: echo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
  );
  socket.write(maskedText("early bird"));
  let got = Buffer.alloc(0);
  const frame = Buffer.concat([Buffer.from([0x81, 10]), Buffer.from("early bird")]);
  while (got.indexOf(frame) === -1) {
    const [chunk] = await once(socket, "data");
    got = Buffer.concat([got, chunk as Buffer]);
  }
  const head = got.subarray(0, got.indexOf("\r\n\r\n")).toString();
  assert.match(head, /^HTTP\/1\.1 101 /);
  assert.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
  assert.equal(app.upgrades[0].url, "/raw");
});

test("curl --proxy with an Upgrade header gets the app's 101 and the bytes after it", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) => socket.end(`${SWITCHING}hello from the app\n`));
  const { outbound } = await pair(t, app);
  const { stdout } = await promisify(execFile)("curl", [
    "-sS",
    "-i",
    "--max-time",
    "10",
    "--proxy",
    `http://127.0.0.1:${outbound.port}`,
    "-H",
    "Connection: Upgrade",
    "-H",
    "Upgrade: x-test",
    "http://echo/curl",
  ]);
  assert.match(stdout, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(stdout, /\r\nUpgrade: x-test\r\n/i);
  assert.match(stdout, /\r\n\r\nhello from the app\n$/);
  assert.equal(app.upgrades[0].headers.upgrade, "x-test");
});
