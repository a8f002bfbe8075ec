// What the outbound listener sends again on its own, over real sockets: only a request that never
// left the proxy (connection refused) — to another endpoint, with no retry policy, and the refusing
// endpoint is avoided from then on. A request that may have reached an app (reset after it was
// written, response timeout) is answered with the failure, never sent twice.

import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { test, type TestContext } from "node:test";
import type { Route } from "../../model/snapshot.ts";
import { startApp } from "../testing/apps.ts";
import { viaProxy } from "../testing/client.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { metricValue, startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";

/** A port nothing listens on (connections to it are refused). */
async function refusingPort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, "close");
  return port;
}

async function proxyOver(t: TestContext, ports: number[], route: Partial<Route> = {}, lbType?: "RoundRobin") {
  const c = cluster(
    "api.default",
    "api",
    ports.map((port) => ({ port })),
  );
  const p = await startOutbound(
    buildSnapshot({
      services: [
        {
          name: "api",
          routes: [
            { name: "default/r/0", matches: [], backends: [{ cluster: "api.default", weight: 1 }], ...route },
          ],
        },
      ],
      clusters: [lbType ? { ...c, policy: { loadBalancer: { type: lbType } } } : c],
    }),
    { timeouts: { responseHeadersMs: 0 } },
  );
  t.after(() => p.close());
  return p;
}

for (const [name, route] of [
  ["a plain route", {}],
  ["a route with a timeout (the routed path)", { timeouts: { requestMs: 5_000 } }],
] as const) {
  test(`${name}: 3 endpoints, one refusing connections, no retry policy — zero failed requests, and the refusing one gets (almost) no picks`, async (t) => {
    const a = await startApp("a");
    const b = await startApp("b");
    t.after(() => Promise.all([a.close(), b.close()]));
    const refusing = await refusingPort();
    const p = await proxyOver(t, [a.port, refusing, b.port], route);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 60; i++) {
      const batch = await Promise.all(Array.from({ length: 5 }, () => viaProxy(p.port, "http://api/x")));
      for (const r of batch) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    assert.deepEqual([...statuses], [[200, 300]], "every request answered by a live endpoint");
    const m = p.metrics.render();
    const resent = metricValue(m, "weft_retries_total", { reason: "not-sent" }) ?? 0;
    const refused = metricValue(m, "weft_upstream_connect_failures_total", { reason: "connect" }) ?? 0;
    assert.ok(resent >= 1, "the refused requests were sent elsewhere");
    // Without connect backoff LeastRequest sends it about a third (100); with it, the first few
    // concurrent picks and one probe per backoff (250 ms, doubling).
    assert.ok(refused <= 12, `refusing endpoint picked ${refused} times out of 300`);
    assert.equal(a.seen.length + b.seen.length, 300, "each request reached an app exactly once");
    const d = p.listener.describeClusters()[0].endpoints.find((e) => e.endpoint.endsWith(`:${refusing}`));
    assert.ok(d?.connectFailures !== undefined && d.connectFailures >= 1);
  });
}

test("a POST whose connection is refused goes to another endpoint with its body, once", async (t) => {
  const app = await startApp("a");
  t.after(() => app.close());
  const refusing = await refusingPort();
  const p = await proxyOver(t, [refusing, app.port], {}, "RoundRobin");
  for (let i = 0; i < 2; i++) {
    const r = await viaProxy(p.port, "http://api/orders", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: `order ${i}`,
    });
    assert.equal(r.status, 200);
  }
  assert.deepEqual(
    app.seen.map((s) => `${s.method} ${s.body}`),
    ["POST order 0", "POST order 1"],
  );
  assert.equal(metricValue(p.metrics.render(), "weft_retries_total", { reason: "not-sent" }), 1);
});

test("a reset after the request was written on a reused connection is answered (502), never sent again: the app saw it once", async (t) => {
  const crash = await startApp("crash", (req, res) => {
    if (req.url === "/warm") res.end("ok");
    else req.socket.destroy(); // as an app that crashed on this request
  });
  t.after(() => crash.close());
  const p = await proxyOver(t, [crash.port]);
  for (const method of ["GET", "PUT", "DELETE"]) {
    assert.equal((await viaProxy(p.port, "http://api/warm")).status, 200); // a keep-alive connection to reuse
    const r = await viaProxy(p.port, "http://api/crash", { method });
    assert.equal(r.status, 502, method);
    assert.equal(r.headers["x-weft-error"], "upstream_reset");
  }
  assert.deepEqual(
    crash.seen.filter((s) => s.url === "/crash").map((s) => s.method),
    ["GET", "PUT", "DELETE"],
    "each request reached the app once",
  );
  assert.equal(metricValue(p.metrics.render(), "weft_retries_total", { reason: "not-sent" }) ?? 0, 0);
});

test("a response timeout on a reused keep-alive connection is a 504, not a second send: the app saw it once", async (t) => {
  const app = await startApp("slow", (req, res) => {
    if (req.url !== "/slow") res.end("ok");
    // /slow never answers
  });
  t.after(() => app.close());
  const c = cluster("api.default", "api", [{ port: app.port }]);
  const p = await startOutbound(
    buildSnapshot({
      services: [
        {
          name: "api",
          routes: [{ name: "default/r/0", matches: [], backends: [{ cluster: "api.default", weight: 1 }] }],
        },
      ],
      clusters: [c],
    }),
    {
      timeouts: { responseHeadersMs: 150 },
    },
  );
  t.after(() => p.close());
  assert.equal((await viaProxy(p.port, "http://api/warm")).status, 200); // a keep-alive connection to reuse
  for (const method of ["GET", "PUT", "DELETE"]) {
    const r = await viaProxy(p.port, "http://api/slow", { method });
    assert.equal(r.status, 504, method);
    assert.match(r.body, /no response headers (within 150 ms|in time)/); // (undici: "in time")
  }
  assert.deepEqual(
    app.started.filter((r) => r.url === "/slow").map((r) => r.method),
    ["GET", "PUT", "DELETE"],
  );
});

test("a failed TLS handshake (foreign CA, wrong SPIFFE ID) sent nothing: the request goes to the endpoint that is right", async (t) => {
  const ca = await createTestCa();
  const foreign = await createTestCa();
  t.after(() => Promise.all([ca.cleanup(), foreign.cleanup()]));
  const API = sid("api");
  const app = await startApp("api");
  const good = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: { service: "api", namespace: "default", identity: API } }),
    await ca.material(API),
  );
  const impostor = await startInbound(
    buildSnapshot({ appPort: app.port }),
    await ca.material(sid("ratings")),
  );
  const stranger = await startInbound(buildSnapshot({ appPort: app.port }), await foreign.material(API));
  const outbound = await startOutbound(
    buildSnapshot({
      services: [
        {
          name: "api",
          routes: [{ name: "default/r/0", matches: [], backends: [{ cluster: "api.default", weight: 1 }] }],
        },
      ],
      clusters: [
        cluster("api.default", "api", [
          { port: impostor.port, identity: API },
          { port: stranger.port, identity: API },
          { port: good.port, identity: API },
        ]),
      ],
    }),
    { tls: await ca.material(sid("web")) },
  );
  t.after(() =>
    Promise.all([outbound.close(), good.close(), impostor.close(), stranger.close(), app.close()]),
  );
  for (let i = 0; i < 12; i++) {
    const r = await viaProxy(outbound.port, `http://api/${i}`);
    assert.equal(r.status, 200, r.body);
  }
  assert.equal(app.seen.length, 12);
  const m = outbound.metrics.render();
  assert.ok((metricValue(m, "weft_retries_total", { reason: "not-sent" }) ?? 0) >= 2);
  assert.ok((metricValue(m, "weft_tls_handshake_failures_total", { reason: "identity_mismatch" }) ?? 0) >= 1);
  assert.ok((metricValue(m, "weft_tls_handshake_failures_total", { reason: "handshake" }) ?? 0) >= 1);
});
