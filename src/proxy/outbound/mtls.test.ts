// mTLS origination from the outbound listener with real certificates: the sidecar pair
// (client → outbound → inbound → app), SPIFFE ID verification, renewal and session resumption.

import { test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { viaProxy } from "../testing/client.ts";
import { metricValue, startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import type { TlsMaterial } from "../types.ts";

const ca = await createTestCa();
const foreign = await createTestCa();
test.after(() => Promise.all([ca.cleanup(), foreign.cleanup()]));
const WEB = sid("web");
const REVIEWS = sid("reviews");

/** An mTLS upstream that records, per connection, the client certificate serial and resumption. */
async function recordingUpstream(material: TlsMaterial) {
  const connections: { serial: string; resumed: boolean; peer: string | undefined }[] = [];
  const server = https.createServer(
    {
      key: material.keyPem,
      cert: material.certChainPem,
      ca: material.trustBundlePem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      req.resume();
      res.setHeader("connection", "close"); // every request needs a new connection
      res.end("ok");
    },
  );
  server.on("secureConnection", (s: TLSSocket) => {
    const cert = s.getPeerCertificate();
    connections.push({
      serial: cert.serialNumber.toLowerCase(),
      resumed: s.isSessionReused(),
      peer: cert.subjectaltname,
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test("sidecar pair: outbound originates mTLS, inbound verifies it, the app sees the caller's SPIFFE ID", async (t) => {
  const app = await startApp("reviews");
  const inbound = await startInbound(
    buildSnapshot({
      appPort: app.port,
      proxy: { service: "reviews", namespace: "default", identity: REVIEWS },
    }),
    await ca.material(REVIEWS),
  );
  const outbound = await startOutbound(
    buildSnapshot({
      services: [{ name: "reviews", port: 9080, endpoints: [{ port: inbound.port, identity: REVIEWS }] }],
    }),
    { tls: await ca.material(WEB) },
  );
  t.after(() => Promise.all([outbound.close(), inbound.close(), app.close()]));

  for (let i = 0; i < 3; i++) {
    const r = await viaProxy(outbound.port, `http://reviews:9080/p${i}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, `reviews GET /p${i}`);
  }
  assert.equal(app.seen[0].headers["x-forwarded-client-cert"], `By=${REVIEWS};URI=${WEB}`);
  assert.equal(app.seen[0].headers["x-forwarded-for"], "127.0.0.1, 127.0.0.1");
  const out = outbound.metrics.render();
  assert.equal(
    metricValue(out, "weft_upstream_connections_total", { direction: "outbound", tls: "true" }),
    1,
    "pooled",
  );
  assert.equal(
    metricValue(inbound.metrics.render(), "weft_requests_total", {
      direction: "inbound",
      source_service: "web.default",
    }),
    3,
  );
});

test("an upstream presenting another SPIFFE ID, or a foreign CA's certificate, is upstream_tls_error", async (t) => {
  const app = await startApp("reviews");
  const impostor = await startInbound(
    buildSnapshot({ appPort: app.port }),
    await ca.material(sid("ratings")),
  );
  const stranger = await startInbound(buildSnapshot({ appPort: app.port }), await foreign.material(REVIEWS));
  const outbound = await startOutbound(
    buildSnapshot({
      services: [
        { name: "reviews", endpoints: [{ port: impostor.port, identity: REVIEWS }] },
        { name: "foreign", endpoints: [{ port: stranger.port, identity: REVIEWS }] },
      ],
    }),
    { tls: await ca.material(WEB) },
  );
  t.after(() => Promise.all([outbound.close(), impostor.close(), stranger.close(), app.close()]));

  const r = await viaProxy(outbound.port, "http://reviews/");
  assert.equal(r.status, 502);
  assert.equal(r.headers["x-weft-error"], "upstream_tls_error");
  assert.match(
    r.body,
    /presented SPIFFE ID spiffe:\/\/weft.local\/ns\/default\/sa\/ratings, expected spiffe:\/\/weft.local\/ns\/default\/sa\/reviews/,
  );
  const f = await viaProxy(outbound.port, "http://foreign/");
  assert.equal(f.status, 502);
  assert.equal(f.headers["x-weft-error"], "upstream_tls_error");
  assert.equal(app.started.length, 0);
  const text = outbound.metrics.render();
  assert.equal(
    metricValue(text, "weft_tls_handshake_failures_total", {
      direction: "outbound",
      reason: "identity_mismatch",
    }),
    1,
  );
  assert.equal(
    metricValue(text, "weft_tls_handshake_failures_total", { direction: "outbound", reason: "handshake" }),
    1,
  );
  assert.equal(
    metricValue(text, "weft_local_replies_total", { direction: "outbound", code: "upstream_tls_error" }),
    2,
  );
});

test("without a certificate yet, an mTLS endpoint is not_ready (plaintext endpoints still work)", async (t) => {
  const app = await startApp("plain");
  const outbound = await startOutbound(
    buildSnapshot({
      services: [
        { name: "secure", endpoints: [{ port: 1, identity: REVIEWS }] },
        { name: "plain", endpoints: [{ port: app.port }] },
      ],
    }),
  );
  t.after(() => Promise.all([outbound.close(), app.close()]));
  const r = await viaProxy(outbound.port, "http://secure/");
  assert.equal(r.status, 503);
  assert.equal(r.headers["x-weft-error"], "not_ready");
  assert.equal((await viaProxy(outbound.port, "http://plain/")).status, 200);
});

test("reconnects resume the TLS session; a renewed certificate is presented on new connections", async (t) => {
  const server = await ca.material(REVIEWS);
  const up = await recordingUpstream(server);
  const first = await ca.material(WEB);
  const outbound = await startOutbound(
    buildSnapshot({ services: [{ name: "reviews", endpoints: [{ port: up.port, identity: REVIEWS }] }] }),
    { tls: first },
  );
  t.after(() => Promise.all([outbound.close(), up.close()]));

  for (let i = 0; i < 3; i++) assert.equal((await viaProxy(outbound.port, "http://reviews/")).status, 200);
  const renewed = await ca.material(WEB);
  outbound.tls.set(renewed);
  assert.equal((await viaProxy(outbound.port, "http://reviews/")).status, 200);

  assert.deepEqual(
    up.connections.map((c) => [
      c.serial === first.serial.toLowerCase()
        ? "first"
        : c.serial === renewed.serial.toLowerCase()
          ? "renewed"
          : "?",
      c.resumed,
    ]),
    [
      ["first", false],
      ["first", true],
      ["first", true],
      ["renewed", false],
    ],
  );
  assert.equal(
    metricValue(outbound.metrics.render(), "weft_tls_sessions_resumed_total", { direction: "outbound" }),
    2,
  );
});
