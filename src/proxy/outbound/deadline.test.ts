// Route timeouts govern both sidecars: the calling sidecar passes what is left of the route's
// timeout to the destination's sidecar (x-weft-deadline-ms, over mTLS), which waits for its app that
// long instead of a default of its own; without a route timeout neither side limits the wait for
// response headers unless told to. Real sockets, real certificates, outbound → inbound → app.

import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import type { Route } from "../../model/snapshot.ts";
import { DEFAULT_TIMEOUTS } from "../pipeline/timeouts.ts";
import { startApp } from "../testing/apps.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { request, viaProxy } from "../testing/client.ts";
import { startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());
const WEB = sid("web");
const API = sid("api");

/** app (answers /slow after `delayMs`) ← inbound (default response-headers timeout `inboundMs`) ← outbound. */
async function pair(t: TestContext, routes: Route[], opts: { delayMs: number; inboundMs: number }) {
  const app = await startApp("api", (req, res) => {
    // unref: an answer nobody waits for any more does not hold the test process open
    setTimeout(() => res.end(`api ${req.url}`), req.url === "/slow" ? opts.delayMs : 0).unref();
  });
  const inbound = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: { service: "api", namespace: "default", identity: API } }),
    await ca.material(API),
    { timeouts: { responseHeadersMs: opts.inboundMs } },
  );
  const outbound = await startOutbound(
    buildSnapshot({
      services: [{ name: "api", routes }],
      clusters: [cluster("api.default", "api", [{ port: inbound.port, identity: API }])],
    }),
    { tls: await ca.material(WEB) },
  );
  t.after(() => Promise.all([outbound.close(), inbound.close(), app.close()]));
  return { app, inbound, outbound };
}

const over = (name: string, extra: Partial<Route> = {}): Route => ({
  name,
  matches: [],
  backends: [{ cluster: "api.default", weight: 1 }],
  ...extra,
});

test("no response-headers timeout by default on either side (long polls and slow streams work)", () => {
  assert.equal(DEFAULT_TIMEOUTS.responseHeadersMs, 0);
  assert.ok(DEFAULT_TIMEOUTS.bodyIdleMs > 0, "body silence stays bounded");
});

test("a route timeout longer than the destination's default: the destination waits as long as the route says", async (t) => {
  const { app, outbound } = await pair(t, [over("default/api/0", { timeouts: { requestMs: 3_000 } })], {
    delayMs: 400,
    inboundMs: 150,
  });
  const r = await viaProxy(outbound.port, "http://api/slow");
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body, "api /slow");
  const sent = Number(app.seen[0].headers["x-weft-deadline-ms"] ?? "absent");
  assert.ok(Number.isNaN(sent), "the app never sees the deadline header");
});

test("without a route timeout the destination's own default applies, and its 504 says where to change it", async (t) => {
  const { outbound } = await pair(t, [over("default/api/0")], { delayMs: 400, inboundMs: 150 });
  const r = await viaProxy(outbound.port, "http://api/slow");
  assert.equal(r.status, 504);
  assert.equal(r.headers["x-weft-error"], "timeout");
  assert.match(r.body, /no response headers within 150 ms \(weft proxy --response-headers-timeout\)/);
});

test("the route's request timeout fires in the calling sidecar and names the HTTPRoute field", async (t) => {
  const { outbound } = await pair(t, [over("default/api/0", { timeouts: { requestMs: 200 } })], {
    delayMs: 2_000,
    inboundMs: 0,
  });
  const r = await viaProxy(outbound.port, "http://api/slow");
  assert.equal(r.status, 504);
  assert.match(
    r.body,
    /no response headers within 200 ms \(HTTPRoute default\/api rule 0 timeouts\.request\)/,
  );
});

test("a per-try timeout (backendRequest) is what the destination is told, and names its field when it fires", async (t) => {
  const { outbound } = await pair(
    t,
    [over("default/api/fast", { timeouts: { requestMs: 5_000, backendRequestMs: 150 } })],
    { delayMs: 2_000, inboundMs: 0 },
  );
  const r = await viaProxy(outbound.port, "http://api/slow");
  assert.equal(r.status, 504);
  // Either sidecar may notice first (the destination was told 150 ms); both name a route limit.
  assert.match(
    r.body,
    /within 15\d ms \((HTTPRoute default\/api rule fast timeouts\.backendRequest|the deadline from web\.default's route timeouts)/,
  );
});

test("the inbound takes the deadline only from a verified mesh peer; a plaintext caller's is ignored and stripped", async (t) => {
  const app = await startApp("api", (req, res) => setTimeout(() => res.end("late"), 400).unref());
  const inbound = await startInbound(
    buildSnapshot({
      appPort: app.port,
      proxy: { service: "api", namespace: "default", identity: API },
      mtlsMode: "PERMISSIVE",
    }),
    await ca.material(API),
    { timeouts: { responseHeadersMs: 150 } },
  );
  t.after(() => Promise.all([inbound.close(), app.close()]));
  const plain = await request(inbound.port, { headers: { host: "api", "x-weft-deadline-ms": "5000" } });
  assert.equal(plain.status, 504, "the plaintext caller's deadline did not extend the wait");
  const web = await ca.material(WEB);
  const tlsOpts = {
    key: web.keyPem,
    cert: web.certChainPem,
    ca: web.trustBundlePem,
    checkServerIdentity: () => undefined,
  };
  const mesh = await request(inbound.port, {
    headers: { host: "api", "x-weft-deadline-ms": "5000" },
    tls: tlsOpts,
  });
  assert.equal(mesh.status, 200, "a mesh peer's deadline governs");
  for (const bad of ["-1", "1e9", "abc", "0"]) {
    const r = await request(inbound.port, {
      headers: { host: "api", "x-weft-deadline-ms": bad },
      tls: tlsOpts,
    });
    assert.equal(r.status, 504, `malformed deadline ${bad} is ignored`);
  }
  for (const s of app.seen)
    assert.equal(s.headers["x-weft-deadline-ms"], undefined, "never forwarded to the app");
});

test("the outbound never forwards an app's own x-weft-deadline-ms, and sends none to a non-mesh endpoint", async (t) => {
  const app = await startApp("plain");
  const outbound = await startOutbound(
    buildSnapshot({
      services: [{ name: "api", routes: [over("default/api/0", { timeouts: { requestMs: 3_000 } })] }],
      clusters: [cluster("api.default", "api", [{ port: app.port }])],
    }),
  );
  t.after(() => Promise.all([outbound.close(), app.close()]));
  const r = await viaProxy(outbound.port, "http://api/x", { headers: { "x-weft-deadline-ms": "99999999" } });
  assert.equal(r.status, 200);
  assert.equal(app.seen[0].headers["x-weft-deadline-ms"], undefined);
});
