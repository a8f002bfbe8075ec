// The inbound listener with real certificates from the mesh CA: mTLS STRICT, peer identity,
// X-Forwarded-Client-Cert, renewal, PERMISSIVE, the local rate limit.

import { test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import tls from "node:tls";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { request } from "../testing/client.ts";
import { metricValue, startInbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import type { RateLimit } from "../../model/snapshot.ts";
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
  // Weft talks to weft: TLS 1.3 only, so no CBC-SHA1 suite of TLS 1.2 is ever negotiated.
  const tls12 = await handshake(p.port, { ...web, maxVersion: "TLSv1.2" });
  assert.ok(tls12.error, "TLS 1.2 refused");
  assert.equal(app.started.length, 0, "nothing refused reached the app");
  assert.ok((await handshake(p.port, web)).serial, "TLS 1.3 accepted");

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
  assert.equal(failures, 4);
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

/** The snapshot of the reviews proxy with an inbound rate limit (and a fixed version, so tests can keep it). */
function limited(appPort: number, rateLimit: RateLimit | undefined, version: string) {
  const s = buildSnapshot({ appPort, proxy: appProxy, version });
  if (rateLimit) s.inbound.rateLimit = rateLimit;
  return s;
}

test("rate limit: an empty bucket is a local 429 rate_limited with Retry-After; the app never sees it; tokens come back", async (t) => {
  const app = await startApp("reviews");
  const now = { t: 0 };
  const p = await startInbound(
    limited(app.port, { requestsPerSecond: 2, burst: 3, perSource: false }, "v1"),
    await ca.material(APP),
    { rateLimitClock: () => now.t },
  );
  t.after(() => Promise.all([p.close(), app.close()]));
  const web = clientTls(await ca.material(WEB));
  const agent = new https.Agent({ keepAlive: true, ...web });
  t.after(() => agent.destroy());
  const get = (path: string, body?: string) =>
    request(p.port, {
      method: body === undefined ? "GET" : "POST",
      path,
      headers: { host: "reviews" },
      body,
      agent,
      tls: web,
    });

  const codes = [];
  for (let i = 0; i < 5; i++) codes.push((await get(`/r${i}`)).status);
  assert.deepEqual(codes, [200, 200, 200, 429, 429]);
  // A refused request with a body: its body is read and discarded, the connection carries on.
  const refused = await get("/with-body", "x".repeat(10_000));
  assert.equal(refused.status, 429);
  assert.equal(refused.headers["x-weft-error"], "rate_limited");
  assert.equal(refused.headers["retry-after"], "1", "a token every 500 ms: retry after 1 s (rounded up)");
  assert.match(refused.body, /^rate_limited: reviews\.default accepts 2 requests\/s \(burst 3\)/);
  assert.equal(app.seen.length, 3, "refused requests never reach the app");

  now.t += 500; // one token
  assert.equal((await get("/after")).status, 200);
  assert.equal((await get("/again")).status, 429);

  const text = p.metrics.render();
  const rl = { source_service: "web.default", destination_service: "reviews.default" };
  assert.equal(metricValue(text, "weft_rate_limited_total", rl), 4);
  assert.equal(
    metricValue(text, "weft_local_replies_total", { direction: "inbound", code: "rate_limited" }),
    4,
  );
  assert.equal(
    metricValue(text, "weft_requests_total", { direction: "inbound", ...rl, response_code: "429" }),
    4,
  );
  assert.equal(
    metricValue(text, "weft_downstream_connections_total", { direction: "inbound" }),
    1,
    "429s keep the connection open",
  );
});

test("rate limit perSource: each caller identity has its own bucket", async (t) => {
  const app = await startApp("reviews");
  const now = { t: 0 };
  const p = await startInbound(
    limited(app.port, { requestsPerSecond: 1, burst: 2, perSource: true }, "v1"),
    await ca.material(APP),
    { rateLimitClock: () => now.t },
  );
  t.after(() => Promise.all([p.close(), app.close()]));
  const callers = {
    web: clientTls(await ca.material(WEB)),
    ratings: clientTls(await ca.material(sid("ratings"))),
  };
  const burst = async (tlsOpts: https.RequestOptions) => {
    const codes = [];
    for (let i = 0; i < 4; i++)
      codes.push((await request(p.port, { headers: { host: "reviews" }, tls: tlsOpts })).status);
    return codes;
  };
  assert.deepEqual(await burst(callers.web), [200, 200, 429, 429]);
  assert.deepEqual(
    await burst(callers.ratings),
    [200, 200, 429, 429],
    "web's burst did not use ratings' tokens",
  );
  const text = p.metrics.render();
  for (const source of ["web.default", "ratings.default"])
    assert.equal(
      metricValue(text, "weft_rate_limited_total", {
        source_service: source,
        destination_service: "reviews.default",
      }),
      2,
    );
});

test("rate limit across config changes: same settings keep the buckets, new settings start afresh, none removes it", async (t) => {
  const app = await startApp("reviews");
  const now = { t: 0 };
  const rl: RateLimit = { requestsPerSecond: 1, burst: 2, perSource: false };
  const p = await startInbound(limited(app.port, rl, "v1"), await ca.material(APP), {
    rateLimitClock: () => now.t,
  });
  t.after(() => Promise.all([p.close(), app.close()]));
  const web = clientTls(await ca.material(WEB));
  const status = async () => (await request(p.port, { headers: { host: "reviews" }, tls: web })).status;
  assert.equal(await status(), 200);
  assert.equal(await status(), 200);
  assert.equal(await status(), 429);

  // An unrelated change (a new version, equal limit): still empty, not refilled by the push.
  p.config.set(limited(app.port, { ...rl }, "v2"));
  assert.equal(await status(), 429);

  // A changed limit: a fresh bucket with the new burst.
  p.config.set(limited(app.port, { ...rl, burst: 3 }, "v3"));
  assert.deepEqual([await status(), await status(), await status(), await status()], [200, 200, 200, 429]);

  // Removed: no limit at all.
  p.config.set(limited(app.port, undefined, "v4"));
  for (let i = 0; i < 10; i++) assert.equal(await status(), 200);
});
