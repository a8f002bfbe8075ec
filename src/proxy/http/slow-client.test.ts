// Slow and stalled clients are bounded: a request head that never completes gets 408 within the
// configured headersTimeout (Node alone would look only every 30 s), a lone TLS record byte or a
// silent connection is cut after handshakeTimeoutMs, a stalled request body is cut by the upstream
// timeout, and a client that never reads its response pauses the app instead of growing memory.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";

const HEADERS_MS = 1_000;
const HANDSHAKE_MS = 500;
/** Node's check interval (server-edge.ts) plus scheduling slack on a loaded 2-core machine. */
const SLACK_MS = 1_000;

/** Opens a plain connection, writes `bytes`, and resolves when the server closes it. */
async function until(port: number, bytes: string): Promise<{ text: string; ms: number }> {
  const started = performance.now();
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  let text = "";
  s.on("data", (d) => (text += d.toString("latin1")));
  await once(s, "connect");
  if (bytes !== "") s.write(bytes, "latin1");
  await once(s, "close");
  return { text, ms: performance.now() - started };
}

test("slowloris: an unfinished request head gets 408 within headersTimeout, on both listeners", async (t) => {
  const app = await startApp("app");
  const ca = await createTestCa();
  const limits = { headersTimeoutMs: HEADERS_MS, handshakeTimeoutMs: HANDSHAKE_MS };
  const snapshot = buildSnapshot({
    appPort: app.port,
    services: [{ name: "app", endpoints: [{ port: app.port }] }],
  });
  const outbound = await startOutbound(snapshot, { limits });
  const permissive = await startInbound(
    buildSnapshot({ appPort: app.port, mtlsMode: "PERMISSIVE" }),
    await ca.material(sid("app")),
    { limits },
  );
  t.after(() => Promise.all([outbound.close(), permissive.close(), app.close(), ca.cleanup()]));

  const [a, b] = await Promise.all([
    until(outbound.port, "GET / HTTP/1.1\r\nHost: app\r\nX-Slow: "),
    until(permissive.port, "GET / HTTP/1.1\r\nHost: app\r\nX-Slow: "),
  ]);
  for (const r of [a, b]) {
    assert.match(r.text, /^HTTP\/1\.1 408 /);
    assert.match(r.text, /x-weft-error: request_timeout/);
    assert.ok(r.ms >= HEADERS_MS - 50, `408 after ${r.ms} ms, before the limit`);
    assert.ok(r.ms < HEADERS_MS + SLACK_MS, `408 after ${r.ms} ms (limit ${HEADERS_MS} ms)`);
  }
  assert.equal(app.started.length, 0);
});

test("a lone TLS record byte, or silence, on the inbound port is cut after handshakeTimeoutMs", async (t) => {
  const ca = await createTestCa();
  const inbound = await startInbound(buildSnapshot({ appPort: 1 }), await ca.material(sid("app")), {
    limits: { handshakeTimeoutMs: HANDSHAKE_MS },
  });
  t.after(() => Promise.all([inbound.close(), ca.cleanup()]));
  const [lone, silent] = await Promise.all([until(inbound.port, "\x16"), until(inbound.port, "")]);
  for (const r of [lone, silent]) {
    assert.equal(r.text, "");
    assert.ok(r.ms >= HANDSHAKE_MS - 50, `closed after ${r.ms} ms, before the limit`);
    assert.ok(r.ms < HANDSHAKE_MS + SLACK_MS, `closed after ${r.ms} ms (limit ${HANDSHAKE_MS} ms)`);
  }
});

test("a stalled request body is cut by the upstream timeout; a slow one streams through", async (t) => {
  let firstChunk!: () => void;
  const gotFirst = new Promise<void>((r) => (firstChunk = r));
  const app = await startApp("app", undefined, {
    stream: (req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => {
        body += d.toString();
        firstChunk();
      });
      req.on("end", () => res.end(`got ${body}`));
    },
  });
  const outbound = await startOutbound(
    buildSnapshot({ services: [{ name: "app", endpoints: [{ port: app.port }] }] }),
    { timeouts: { responseHeadersMs: 800 } },
  );
  t.after(() => Promise.all([outbound.close(), app.close()]));

  // Slow: the app sees the first part before the client sends the rest (streamed, not buffered).
  const slow = net.connect(outbound.port, "127.0.0.1");
  let reply = "";
  slow.on("data", (d) => (reply += d.toString("latin1")));
  slow.write("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 6\r\nConnection: close\r\n\r\nabc");
  await gotFirst;
  slow.write("def");
  await once(slow, "close");
  assert.match(reply, /^HTTP\/1\.1 200 /);
  assert.match(reply, /got abcdef$/);

  // Stalled: half a body, then nothing. The answer comes at the upstream timeout.
  const started = performance.now();
  const stalled = net.connect(outbound.port, "127.0.0.1");
  t.after(() => stalled.destroy());
  stalled.write("POST / HTTP/1.1\r\nHost: app\r\nContent-Length: 10\r\n\r\nabc");
  const [first] = (await once(stalled, "data")) as [Buffer];
  const ms = performance.now() - started;
  assert.match(first.toString("latin1"), /^HTTP\/1\.1 504 /);
  assert.ok(ms < 800 + SLACK_MS, `answered after ${ms} ms`);
});

test("a client that never reads its response pauses the app: bounded bytes in flight, no buffering", async (t) => {
  const CHUNK = Buffer.alloc(64 * 1024, 120);
  const TOTAL = 512 * 1024 * 1024;
  let written = 0;
  let blocked!: () => void;
  const appBlocked = new Promise<void>((r) => (blocked = r));
  const app = http.createServer((_req, res) => {
    res.writeHead(200, { "content-length": String(TOTAL) });
    const pump = () => {
      while (written < TOTAL) {
        written += CHUNK.length;
        if (!res.write(CHUNK)) {
          // Back-pressure reached the app. Note it, then wait for a drain that only a reader brings.
          blockedAt = written;
          blocked();
          res.once("drain", pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  let blockedAt = 0;
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  const port = (app.address() as AddressInfo).port;
  const outbound = await startOutbound(buildSnapshot({ services: [{ name: "app", endpoints: [{ port }] }] }));
  const client = net.connect(outbound.port, "127.0.0.1");
  client.on("error", () => {});
  t.after(async () => {
    client.destroy();
    await outbound.close();
    app.closeAllConnections();
    app.close();
  });
  const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  client.write("GET /big HTTP/1.1\r\nHost: app\r\n\r\n");
  client.pause(); // never reads
  await appBlocked;
  // Let every buffer between app and client fill: the app stays blocked at a bounded total.
  let last = -1;
  while (written !== last) {
    last = written;
    await new Promise((r) => setTimeout(r, 200));
  }
  const inFlightMb = written / 2 ** 20;
  const grownMb =
    (process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - heapBefore) / 2 ** 20;
  t.diagnostic(
    `app wrote ${inFlightMb.toFixed(1)} MB of 512 MB before stalling; proxy+test memory +${grownMb.toFixed(1)} MB`,
  );
  assert.ok(blockedAt > 0);
  assert.ok(inFlightMb < 64, `${inFlightMb} MB left the app while nobody read`);
  assert.ok(grownMb < 64, `memory grew ${grownMb} MB`);
});
