// The proxy never crashes on request bytes: seeded random mutations of valid requests against the
// outbound listener (plaintext) and the inbound one (inside mTLS). Each gets a response or a closed
// connection; afterwards both listeners still serve.

import { test } from "node:test";
import assert from "node:assert/strict";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { startInbound, startOutbound } from "../testing/harness.ts";
import { rawRequest } from "../testing/raw.ts";
import { buildSnapshot } from "../testing/snapshots.ts";

const TEMPLATES = [
  "GET http://app/a?b=c HTTP/1.1\r\nHost: app\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n",
  "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
  "PUT /x HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, x-a\r\nX-A: 1\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  "GET / HTTP/1.1\r\nHost: app\r\nGET / HTTP/1.1\r\nHost: app\r\n\r\n",
];
const SPICE = [
  "\r",
  "\n",
  "\0",
  " ",
  ":",
  "\t",
  "\r\n",
  "\r\n\r\n",
  "chunked",
  "Content-Length: 3\r\n",
  "Transfer-Encoding: chunked\r\n",
  "\xff",
  "ÿ",
  "%00",
  "HTTP/1.1",
];

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function mutate(rand: () => number): string {
  let s = TEMPLATES[Math.floor(rand() * TEMPLATES.length)];
  const n = 1 + Math.floor(rand() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rand() * (s.length + 1));
    switch (Math.floor(rand() * 4)) {
      case 0:
        s = s.slice(0, at) + SPICE[Math.floor(rand() * SPICE.length)] + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rand() * 8));
        break;
      case 2:
        s = s.slice(0, at) + String.fromCharCode(Math.floor(rand() * 256)) + s.slice(at + 1);
        break;
      default:
        s = s.slice(0, at) + s.slice(at, at + 20) + s.slice(at);
    }
  }
  return s;
}

test("randomly mutated requests never crash either listener", async (t) => {
  const ca = await createTestCa();
  const app = await startApp("app");
  const snapshot = buildSnapshot({
    appPort: app.port,
    services: [{ name: "app", endpoints: [{ port: app.port }] }],
  });
  const outbound = await startOutbound(snapshot);
  const inbound = await startInbound(snapshot, await ca.material(sid("app")));
  const client = await ca.material(sid("web"));
  const tls = {
    key: client.keyPem,
    cert: client.certChainPem,
    ca: client.trustBundlePem,
    checkServerIdentity: () => undefined,
  };
  t.after(() => Promise.all([outbound.close(), inbound.close(), app.close(), ca.cleanup()]));

  const rand = prng(20261122);
  for (let i = 0; i < 300; i++) {
    const bytes = Buffer.from(mutate(rand), "latin1");
    const r = await rawRequest(outbound.port, bytes, { waitMs: 5_000, end: true });
    assert.ok(
      r.status === 0 || (r.status >= 200 && r.status < 600),
      `outbound case ${i}: ${JSON.stringify(r.statusLine)}`,
    );
    if (i % 3 === 0) {
      const s = await rawRequest(inbound.port, bytes, { waitMs: 5_000, tls, end: true });
      assert.ok(
        s.status === 0 || (s.status >= 200 && s.status < 600),
        `inbound case ${i}: ${JSON.stringify(s.statusLine)}`,
      );
    }
  }
  const ok = "GET /still-alive HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n";
  assert.equal((await rawRequest(outbound.port, ok)).status, 200);
  assert.equal((await rawRequest(inbound.port, ok, { tls })).status, 200);
});
