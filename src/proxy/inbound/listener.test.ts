// The inbound listener with real certificates from the mesh CA: mTLS STRICT, peer identity,
// X-Forwarded-Client-Cert, renewal, PERMISSIVE.

import { test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import tls from "node:tls";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { request } from "../testing/client.ts";
import { metricValue, startInbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import type { TlsMaterial } from "../types.ts";

const ca = await createTestCa();
const foreign = await createTestCa();
test.after(() => Promise.all([ca.cleanup(), foreign.cleanup()]));
const APP = sid("reviews");
const WEB = sid("web");
const appProxy = { service: "reviews", namespace: "default", identity: APP };

function clientTls(m: TlsMaterial): https.RequestOptions & tls.ConnectionOptions & https.AgentOptions {
  return { key: m.keyPem, cert: m.certChainPem, ca: m.trustBundlePem, checkServerIdentity: () => undefined };
}

/** Handshake only; resolves with the server's certificate serial or the error code. */
function handshake(port: number, opts: tls.ConnectionOptions): Promise<{ serial?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port, checkServerIdentity: () => undefined, ...opts });
    s.on("secureConnect", () => {
      // TLS 1.3: the server verifies the client certificate after the client's Finished; a refusal
      // arrives as an alert on the first read. Read once to learn the verdict.
      const serial = s.getPeerCertificate().serialNumber;
      s.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      s.once("data", () => {
        s.destroy();
        resolve({ serial });
      });
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    // A refused certificate may end in a plain close (Node drops the connection without an alert).
    s.on("close", () => resolve({ error: "closed" }));
  });
}

test("a mesh certificate is accepted; the app sees XFCC with the peer's SPIFFE ID, never a client-supplied one", async (t) => {
  const app = await startApp("reviews");
  const server = await ca.material(APP);
  const web = await ca.material(WEB);
  const p = await startInbound(buildSnapshot({ appPort: app.port, proxy: appProxy }), server);
  t.after(() => Promise.all([p.close(), app.close()]));

  const agent = new https.Agent({ keepAlive: true, ...clientTls(web) });
  t.after(() => agent.destroy());
  for (let i = 0; i < 3; i++) {
    const r = await request(p.port, {
      path: `/r${i}`,
      headers: {
        host: "reviews:9080",
        "x-forwarded-client-cert": "By=evil;URI=spiffe://weft.local/ns/default/sa/admin",
      },
      agent,
      tls: clientTls(web),
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, `reviews GET /r${i}`);
  }
  const h = app.seen[0].headers;
  assert.equal(h["x-forwarded-client-cert"], `By=${APP};URI=${WEB}`);
  assert.equal(h["x-forwarded-proto"], "https");
  assert.equal(h["x-forwarded-for"], "127.0.0.1");
  assert.equal(h.host, "reviews:9080");
  const text = p.metrics.render();
  assert.equal(
    metricValue(text, "weft_requests_total", {
      direction: "inbound",
      source_service: "web.default",
      destination_service: "reviews.default",
      response_code: "200",
    }),
    3,
  );
  assert.equal(
    metricValue(text, "weft_downstream_connections_total", { direction: "inbound" }),
    1,
    "keep-alive",
  );
});

test("plaintext, a foreign CA's certificate and no certificate are all refused at the handshake", async (t) => {
  const app = await startApp("reviews");
  const p = await startInbound(buildSnapshot({ appPort: app.port, proxy: appProxy }), await ca.material(APP));
  t.after(() => Promise.all([p.close(), app.close()]));

  const plain = await request(p.port, { path: "/", headers: { host: "reviews" } });
  assert.equal(plain.status, 400);
  assert.equal(plain.headers["x-weft-error"], "mtls_required");
  assert.match(plain.body, /^mtls_required: /);

  const stranger = await foreign.material(WEB); // same SPIFFE ID, wrong CA
  const fromForeign = await handshake(p.port, {
    key: stranger.keyPem,
    cert: stranger.certChainPem,
    ca: ca.ca.trustBundlePem,
  });
  assert.ok(fromForeign.error, "foreign CA refused");
  const anonymous = await handshake(p.port, { ca: ca.ca.trustBundlePem });
  assert.ok(anonymous.error, "no client certificate refused");
  const web = clientTls(await ca.material(WEB)) as tls.ConnectionOptions;
  const tls11 = await handshake(p.port, {
    ...web,
    maxVersion: "TLSv1.1",
    minVersion: "TLSv1",
    ciphers: "DEFAULT@SECLEVEL=0",
  });
  assert.ok(tls11.error, "TLS 1.1 refused");
  assert.equal(app.started.length, 0, "nothing refused reached the app");
  assert.ok((await handshake(p.port, { ...web, maxVersion: "TLSv1.2" })).serial, "TLS 1.2 accepted");

  const text = p.metrics.render();
  assert.equal(
    metricValue(text, "weft_tls_handshake_failures_total", { direction: "inbound", reason: "plaintext" }),
    1,
  );
  const failures = ["bad_certificate", "no_client_certificate", "protocol", "handshake", "reset"]
    .map(
      (reason) =>
        metricValue(text, "weft_tls_handshake_failures_total", { direction: "inbound", reason }) ?? 0,
    )
    .reduce((a, b) => a + b, 0);
  assert.equal(failures, 3);
  assert.equal(
    metricValue(text, "weft_tls_handshake_failures_total", {
      direction: "inbound",
      reason: "bad_certificate",
    }),
    1,
  );
});

test("a renewed certificate is used for new connections (setSecureContext), old ones keep working", async (t) => {
  const app = await startApp("reviews");
  const first = await ca.material(APP);
  const p = await startInbound(buildSnapshot({ appPort: app.port, proxy: appProxy }), first);
  t.after(() => Promise.all([p.close(), app.close()]));
  const web = clientTls(await ca.material(WEB));
  assert.equal((await handshake(p.port, web)).serial?.toLowerCase(), first.serial.toLowerCase());
  const renewed = await ca.material(APP);
  p.tls.set(renewed);
  assert.equal((await handshake(p.port, web)).serial?.toLowerCase(), renewed.serial.toLowerCase());
});

test("PERMISSIVE accepts plaintext (no XFCC, source unknown) as well as mTLS", async (t) => {
  const app = await startApp("reviews");
  const p = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: appProxy, mtlsMode: "PERMISSIVE" }),
    await ca.material(APP),
  );
  t.after(() => Promise.all([p.close(), app.close()]));
  const plain = await request(p.port, {
    path: "/plain",
    headers: { host: "reviews", "x-forwarded-client-cert": "URI=forged" },
  });
  assert.equal(plain.status, 200);
  assert.equal(app.seen[0].headers["x-forwarded-client-cert"], undefined);
  assert.equal(app.seen[0].headers["x-forwarded-proto"], "http");
  const secure = await request(p.port, {
    path: "/tls",
    headers: { host: "reviews" },
    tls: clientTls(await ca.material(WEB)),
  });
  assert.equal(secure.status, 200);
  assert.equal(app.seen[1].headers["x-forwarded-client-cert"], `By=${APP};URI=${WEB}`);
  assert.equal(
    metricValue(p.metrics.render(), "weft_requests_total", {
      direction: "inbound",
      source_service: "unknown",
      response_code: "200",
    }),
    1,
  );
});

test("no config yet: not_ready; the app unreachable: upstream_unavailable", async (t) => {
  const p = await startInbound(undefined, await ca.material(APP));
  t.after(() => p.close());
  const web = clientTls(await ca.material(WEB));
  const r = await request(p.port, { headers: { host: "reviews" }, tls: web });
  assert.equal(r.status, 503);
  assert.equal(r.headers["x-weft-error"], "not_ready");
  p.config.set(buildSnapshot({ appPort: 1, proxy: appProxy }));
  const down = await request(p.port, { headers: { host: "reviews" }, tls: web });
  assert.equal(down.status, 503);
  assert.equal(down.headers["x-weft-error"], "upstream_unavailable");
  assert.match(down.body, /app at 127.0.0.1:1 refused the connection/);
});

test("an inbound listener started before its certificate serves once the certificate arrives", async (t) => {
  const app = await startApp("reviews");
  const p = await startInbound(buildSnapshot({ appPort: app.port, proxy: appProxy }), undefined);
  t.after(() => Promise.all([p.close(), app.close()]));
  const web = clientTls(await ca.material(WEB));
  assert.ok((await handshake(p.port, web)).error, "no certificate yet: handshakes fail");
  p.tls.set(await ca.material(APP));
  const r = await request(p.port, { path: "/late", headers: { host: "reviews" }, tls: web });
  assert.equal(r.status, 200);
  assert.equal(r.body, "reviews GET /late");
});
