// Back-pressure end to end over HTTP/2: a slow h2c client reading a 100 MB response through the
// sidecar pair (h2 over mTLS between them, HTTP/1.1 to the app) holds the app back, so what is
// buffered anywhere between them stays a few MB; then the whole body arrives.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createTestCa, sid } from "../testing/certs.ts";
import { startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());
const TOTAL = 100 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 97);

test("a paused h2 client holds the app back through the pair; then all 100 MB arrive", async (t) => {
  let written = 0;
  let blocked!: () => void;
  const appBlocked = new Promise<void>((r) => (blocked = r));
  const app = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "application/octet-stream" });
    const pump = (): void => {
      while (written < TOTAL) {
        written += CHUNK.length;
        if (!res.write(CHUNK)) {
          blocked();
          res.once("drain", pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  t.after(() => app.close());
  const REVIEWS = sid("reviews");
  const inbound = await startInbound(
    buildSnapshot({
      appPort: (app.address() as AddressInfo).port,
      proxy: { service: "reviews", namespace: "default", identity: REVIEWS },
    }),
    await ca.material(REVIEWS),
    { http2: true },
  );
  const outbound = await startOutbound(
    buildSnapshot({
      services: [{ name: "reviews", port: 9080, endpoints: [{ port: inbound.port, identity: REVIEWS }] }],
    }),
    { tls: await ca.material(sid("web")), h2c: true },
  );
  t.after(() => Promise.all([outbound.close(), inbound.close()]));

  const session = http2.connect(`http://127.0.0.1:${outbound.port}`);
  t.after(() => session.close());
  const s = session.request({ ":path": "/big", ":authority": "reviews:9080" });
  s.end();
  await once(s, "response");
  // Read nothing: the app must block, and stay blocked, with little written.
  s.pause();
  await appBlocked;
  // PING round trips give a proxy that buffers (instead of pausing) time to pull far more.
  for (let i = 0; i < 300; i++) await new Promise((r) => session.ping(r));
  const heldAt = written;
  assert.ok(heldAt < 10 * 1024 * 1024, `the app wrote ${heldAt} bytes to a client that reads nothing`);

  // Everything the app wrote is somewhere between it and the client: in socket buffers or in the
  // proxies. That bound is the proxies' memory for this stream.
  let received = 0;
  s.on("data", (c: Buffer) => (received += c.length));
  s.resume();
  await once(s, "end");
  assert.equal(received, TOTAL);
});
