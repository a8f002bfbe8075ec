// HTTP/2 between sidecars: HTTP/1.1 requests from an app travel as h2 streams multiplexed over one
// mTLS connection (ALPN h2) and are turned back into HTTP/1.1 for the app at the server sidecar.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { viaProxy } from "../testing/client.ts";
import { metricValue } from "../testing/harness.ts";
import { startSidecarPair } from "../testing/sidecar-pair.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());
const WEB = sid("web");
const REVIEWS = sid("reviews");

const pair = (t: { after(fn: () => unknown): void }, appPort: number) => startSidecarPair(t, ca, appPort);

test("HTTP/1.1 requests cross the pair as h2 streams over one TLS connection; the app gets HTTP/1.1", async (t) => {
  const app = await startApp("reviews");
  t.after(() => app.close());
  const { inbound, outbound } = await pair(t, app.port);
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      viaProxy(outbound.port, `http://reviews:9080/p${i}`, { headers: { "x-caller": "c", cookie: "a=1" } }),
    ),
  );
  results.forEach((r, i) => {
    assert.equal(r.status, 200);
    assert.equal(r.body, `reviews GET /p${i}`);
  });
  const seen = app.seen[0];
  assert.equal(seen.headers.host, "reviews:9080");
  assert.equal(seen.headers["x-caller"], "c");
  assert.equal(seen.headers.cookie, "a=1");
  assert.equal(seen.headers["x-forwarded-client-cert"], `By=${REVIEWS};URI=${WEB}`);
  assert.equal(seen.headers["x-forwarded-proto"], "http", "the app's own scheme, carried by its sidecar");
  const out = outbound.metrics.render();
  assert.equal(
    metricValue(out, "weft_upstream_connections_total", { direction: "outbound", tls: "true" }),
    1,
  );
  const inb = inbound.metrics.render();
  assert.equal(metricValue(inb, "weft_downstream_connections_total", { direction: "inbound" }), 1);
  assert.equal(
    metricValue(inb, "weft_requests_total", { direction: "inbound", source_service: "web.default" }),
    40,
  );
});

test("the server sidecar answers h2 only over verified mTLS: a peer's stream gets the same peer checks", async (t) => {
  const app = await startApp("reviews");
  t.after(() => app.close());
  const { inbound } = await pair(t, app.port);
  const m = await ca.material(WEB);
  const session = http2.connect(`https://127.0.0.1:${inbound.port}`, {
    createConnection: () =>
      tls.connect({
        host: "127.0.0.1",
        port: inbound.port,
        key: m.keyPem,
        cert: m.certChainPem,
        ca: m.trustBundlePem,
        ALPNProtocols: ["h2"],
        checkServerIdentity: () => undefined,
      }),
  });
  t.after(() => session.close());
  const s = session.request({
    ":path": "/direct",
    ":authority": "reviews",
    "x-forwarded-client-cert": "forged",
  });
  s.end();
  const [headers] = (await once(s, "response")) as [http2.IncomingHttpHeaders];
  let body = "";
  s.on("data", (c: Buffer) => (body += c.toString()));
  await once(s, "end");
  assert.equal(headers[":status"], 200);
  assert.equal(body, "reviews GET /direct");
  assert.equal(app.seen[0].headers["x-forwarded-client-cert"], `By=${REVIEWS};URI=${WEB}`);
  // What cannot be forwarded is refused with a local reply on its own stream; the session lives on.
  const bad = session.request({ ":method": "CONNECT", ":authority": "reviews:443" });
  const [badHead] = (await once(bad, "response")) as [http2.IncomingHttpHeaders];
  assert.equal(badHead[":status"], 501);
  assert.equal(badHead["x-weft-error"], "unsupported");
  bad.resume();
  const again = session.request({ ":path": "/again", ":authority": "reviews" });
  again.end();
  const [againHead] = (await once(again, "response")) as [http2.IncomingHttpHeaders];
  assert.equal(againHead[":status"], 200);
  again.resume();
});

test("response trailers survive the pair (app chunked trailers → h2 trailers → chunked trailers)", async (t) => {
  const app = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "text/plain", trailer: "x-checksum" });
    res.write("payload");
    res.addTrailers({ "x-checksum": "abc123" });
    res.end();
  });
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  t.after(() => app.close());
  const { outbound } = await pair(t, (app.address() as AddressInfo).port);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const r = http.request({
      port: outbound.port,
      host: "127.0.0.1",
      path: "http://reviews:9080/t",
      headers: { host: "reviews:9080", te: "trailers" },
    });
    r.on("response", resolve);
    r.on("error", reject);
    r.end();
  });
  let body = "";
  res.on("data", (c: Buffer) => (body += c.toString()));
  await once(res, "end");
  assert.equal(body, "payload");
  assert.deepEqual(res.trailers, { "x-checksum": "abc123" });
});
