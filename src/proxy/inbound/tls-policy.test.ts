// Sidecar-to-sidecar TLS policy: TLS 1.3 only on both sides (the inbound listener and the client
// side of mesh connections), and only peers of the mesh's own trust domain are served — a trust
// bundle that also holds another domain's root proves a certificate, not membership of this mesh.

import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { request } from "../testing/client.ts";
import { metricValue, startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";

const ca = await createTestCa();
const other = await createTestCa("other.example");
test.after(() => Promise.all([ca.cleanup(), other.cleanup()]));
const APP = sid("reviews");
const appProxy = { service: "reviews", namespace: "default", identity: APP };

test("a peer certificate from another trust domain is refused with 403 untrusted_peer and counted", async (t) => {
  const app = await startApp("reviews");
  const own = await ca.material(APP);
  // Federation-style bundle: both roots verify, so the handshake itself succeeds.
  const bundle = own.trustBundlePem + other.ca.trustBundlePem;
  const p = await startInbound(buildSnapshot({ appPort: app.port, proxy: appProxy }), {
    ...own,
    trustBundlePem: bundle,
  });
  t.after(() => Promise.all([p.close(), app.close()]));

  const outsider = await other.material(sid("web", "default", "other.example"));
  const r = await request(p.port, {
    path: "/x",
    headers: { host: "reviews" },
    tls: {
      key: outsider.keyPem,
      cert: outsider.certChainPem,
      ca: own.trustBundlePem,
      checkServerIdentity: () => undefined,
    },
  });
  assert.equal(r.status, 403);
  assert.equal(r.headers["x-weft-error"], "untrusted_peer");
  assert.match(r.body, /trust domain "other\.example"; this mesh is "weft\.local"/);
  assert.equal(app.started.length, 0, "the app never sees it");

  const insider = await ca.material(sid("web"));
  const ok = await request(p.port, {
    path: "/y",
    headers: { host: "reviews" },
    tls: {
      key: insider.keyPem,
      cert: insider.certChainPem,
      ca: own.trustBundlePem,
      checkServerIdentity: () => undefined,
    },
  });
  assert.equal(ok.status, 200);
  assert.equal(app.seen.length, 1);

  const text = p.metrics.render();
  assert.equal(
    metricValue(text, "weft_local_replies_total", { direction: "inbound", code: "untrusted_peer" }),
    1,
  );
  // Not counted as the local service its SPIFFE ID names.
  assert.equal(
    metricValue(text, "weft_requests_total", { direction: "inbound", source_service: "web.default" }),
    1,
  );
});

test("the client side of mesh connections refuses an upstream that offers only TLS 1.2", async (t) => {
  const server = await ca.material(APP);
  const legacy = tls.createServer({
    key: server.keyPem,
    cert: server.certChainPem,
    ca: server.trustBundlePem,
    requestCert: true,
    maxVersion: "TLSv1.2",
  });
  let secured = 0;
  legacy.on("secureConnection", (s: tls.TLSSocket) => {
    secured++;
    s.destroy();
  });
  legacy.on("tlsClientError", () => {});
  legacy.listen(0, "127.0.0.1");
  await once(legacy, "listening");
  const port = (legacy.address() as AddressInfo).port;
  const outbound = await startOutbound(
    buildSnapshot({ services: [{ name: "reviews", endpoints: [{ port, identity: APP }] }] }),
    { tls: await ca.material(sid("web")) },
  );
  t.after(async () => {
    await outbound.close();
    legacy.close();
  });

  const r = await request(outbound.port, { path: "http://reviews/", headers: { host: "reviews" } });
  assert.equal(r.status, 502);
  assert.equal(r.headers["x-weft-error"], "upstream_tls_error");
  assert.equal(secured, 0, "no TLS 1.2 session was established");
});
