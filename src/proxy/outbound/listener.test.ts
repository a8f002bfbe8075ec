// The outbound listener end to end over real sockets: app ← outbound ← client.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { once } from "node:events";
import { startApp } from "../testing/apps.ts";
import { request, viaProxy } from "../testing/client.ts";
import { metricValue, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";

async function closedPort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address() as net.AddressInfo;
  s.close();
  await once(s, "close");
  return port;
}

test("absolute-form (HTTP_PROXY clients) and Host-based origin-form both reach the app", async (t) => {
  const app = await startApp("reviews");
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "reviews", port: 9080, endpoints: [{ port: app.port }] }] }),
  );
  t.after(() => Promise.all([p.close(), app.close()]));

  const a = await viaProxy(p.port, "http://reviews:9080/abs?x=1");
  assert.equal(a.status, 200);
  assert.equal(a.body, "reviews GET /abs?x=1");
  const b = await request(p.port, {
    path: "/origin",
    headers: { host: "reviews.default.svc.cluster.local" },
  });
  assert.equal(b.status, 200);
  assert.equal(b.body, "reviews GET /origin");
  const c = await viaProxy(p.port, "http://reviews.default");
  assert.equal(c.body, "reviews GET /");

  // Absolute-form became origin-form, with Host from the authority (not the client's Host header).
  const d = await request(p.port, { path: "http://reviews/q?y", headers: { host: "something-else" } });
  assert.equal(d.body, "reviews GET /q?y");
  assert.equal(app.seen[3].headers.host, "reviews");
  assert.equal(app.seen[0].url, "/abs?x=1");
});

test("round robin across a cluster's two endpoints", async (t) => {
  const a = await startApp("a");
  const b = await startApp("b");
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "ratings", endpoints: [{ port: a.port }, { port: b.port }] }] }),
  );
  t.after(() => Promise.all([p.close(), a.close(), b.close()]));
  const bodies: string[] = [];
  for (let i = 0; i < 6; i++) bodies.push((await viaProxy(p.port, "http://ratings/")).body.split(" ")[0]);
  assert.equal(bodies.filter((x) => x === "a").length, 3);
  assert.equal(bodies.filter((x) => x === "b").length, 3);
  for (let i = 1; i < bodies.length; i++) assert.notEqual(bodies[i], bodies[i - 1], "alternates");
});

test("weighted backends: 0/100 never picks the 0, 1:1 splits roughly evenly; route matches pick the rule", async (t) => {
  const v1 = await startApp("v1");
  const v2 = await startApp("v2");
  const clusters = [
    cluster("reviews-v1", "reviews", [{ port: v1.port }]),
    cluster("reviews-v2", "reviews", [{ port: v2.port }]),
  ];
  const snap = (w1: number, w2: number) =>
    buildSnapshot({
      clusters,
      services: [
        {
          name: "reviews",
          routes: [
            {
              name: "default/reviews/0",
              matches: [{ headers: [{ type: "Exact", name: "x-user", value: "jason" }] }],
              backends: [{ cluster: "reviews-v2", weight: 1 }],
            },
            {
              name: "default/reviews/1",
              matches: [],
              backends: [
                { cluster: "reviews-v1", weight: w1 },
                { cluster: "reviews-v2", weight: w2 },
              ],
            },
          ],
        },
      ],
    });
  const p = await startOutbound(snap(0, 100));
  t.after(() => Promise.all([p.close(), v1.close(), v2.close()]));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  const count = async (n: number, headers?: Record<string, string>) => {
    const got = { v1: 0, v2: 0 };
    for (let i = 0; i < n; i++) {
      const r = await viaProxy(p.port, "http://reviews/", { agent, headers });
      got[r.body.split(" ")[0] as "v1" | "v2"]++;
    }
    return got;
  };
  assert.deepEqual(await count(50), { v1: 0, v2: 50 });
  p.config.set(snap(1, 1));
  const even = await count(400);
  assert.ok(even.v1 > 120 && even.v2 > 120, `1:1 split gave ${JSON.stringify(even)}`);
  p.config.set(snap(100, 0));
  assert.deepEqual(
    await count(20, { "x-user": "jason" }),
    { v1: 0, v2: 20 },
    "header match wins over the split",
  );
  const text = p.metrics.render();
  assert.equal(
    metricValue(text, "weft_requests_total", {
      route: "default/reviews/0",
      destination_service: "reviews.default",
      response_code: "200",
    }),
    20,
  );
});

test("no_route and upstream_unavailable are local replies with x-weft-error, a text body and a metric", async (t) => {
  const dead = await closedPort();
  const p = await startOutbound(
    buildSnapshot({
      services: [
        { name: "empty", endpoints: [] },
        { name: "dead", endpoints: [{ port: dead }] },
        {
          name: "api",
          routes: [
            { name: "api-only", matches: [{ path: { type: "PathPrefix", value: "/api" } }], backends: [] },
          ],
        },
      ],
    }),
  );
  t.after(() => p.close());

  const unknown = await viaProxy(p.port, "http://nowhere.example/");
  assert.equal(unknown.status, 404);
  assert.equal(unknown.headers["x-weft-error"], "no_route");
  assert.equal(unknown.headers["content-type"], "text/plain; charset=utf-8");
  assert.match(unknown.body, /^no_route: "nowhere.example" is not a mesh service/);

  const unmatched = await viaProxy(p.port, "http://api/other");
  assert.equal(unmatched.status, 404);
  assert.match(unmatched.body, /^no_route: no route of api.default matches GET \/other\n$/);

  // A rule with no backends: 500, as the Gateway API requires (backend-refs.test.ts).
  const noWeight = await viaProxy(p.port, "http://api/api/x");
  assert.equal(noWeight.status, 500);
  assert.match(noWeight.body, /^invalid_backend: route api-only of api.default has no backendRefs/);

  const empty = await viaProxy(p.port, "http://empty/");
  assert.equal(empty.status, 503);
  assert.equal(empty.headers["x-weft-error"], "upstream_unavailable");
  assert.match(empty.body, /empty.default has no endpoints/);

  const refused = await viaProxy(p.port, "http://dead/");
  assert.equal(refused.status, 503);
  assert.equal(refused.headers["x-weft-error"], "upstream_unavailable");
  assert.match(refused.body, /refused the connection/);

  const text = p.metrics.render();
  assert.equal(metricValue(text, "weft_local_replies_total", { direction: "outbound", code: "no_route" }), 2);
  assert.equal(
    metricValue(text, "weft_local_replies_total", { direction: "outbound", code: "upstream_unavailable" }),
    2,
  );
  assert.equal(
    metricValue(text, "weft_local_replies_total", { direction: "outbound", code: "invalid_backend" }),
    1,
  );
  assert.equal(
    metricValue(text, "weft_requests_total", { destination_service: "dead.default", response_code: "503" }),
    1,
  );
});

test("not_ready before the first snapshot; the --upstream port ignores Host", async (t) => {
  const app = await startApp("reviews");
  const idle = await startOutbound(undefined);
  t.after(() => idle.close());
  const r = await viaProxy(idle.port, "http://reviews/");
  assert.equal(r.status, 503);
  assert.equal(r.headers["x-weft-error"], "not_ready");

  const fixed = await startOutbound(
    buildSnapshot({ services: [{ name: "reviews", endpoints: [{ port: app.port }] }] }),
    {
      upstream: "reviews",
    },
  );
  t.after(() => Promise.all([fixed.close(), app.close()]));
  const f = await request(fixed.port, { path: "/fixed", headers: { host: "localhost:1234" } });
  assert.equal(f.status, 200);
  assert.equal(f.body, "reviews GET /fixed");
});

test("hop-by-hop headers are removed both ways; X-Forwarded-For appended, X-Forwarded-Proto set, x-request-id kept or made", async (t) => {
  const app = await startApp("app", (_req, res) => {
    res.writeHead(200, {
      connection: "keep-alive, x-hop",
      "x-hop": "secret-hop",
      "keep-alive": "timeout=5",
      "x-end": "kept",
    });
    res.end("ok");
  });
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "app", endpoints: [{ port: app.port }] }] }),
  );
  t.after(() => Promise.all([p.close(), app.close()]));

  const r = await viaProxy(p.port, "http://app/", {
    headers: {
      connection: "x-custom-hop",
      "x-custom-hop": "drop me",
      "keep-alive": "300",
      "proxy-connection": "keep-alive",
      "proxy-authorization": "Basic c2VjcmV0",
      te: "trailers, deflate",
      upgrade: "h2c",
      "x-forwarded-for": "10.1.1.1",
      "x-forwarded-proto": "https",
      "x-forwarded-client-cert": "By=spoofed",
      "x-end-to-end": "yes",
    },
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers["x-end"], "kept");
  assert.equal(r.headers["x-hop"], undefined);
  assert.notEqual(r.headers["keep-alive"], "timeout=5");

  const h = app.seen[0].headers;
  for (const gone of [
    "x-custom-hop",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "trailer",
    "upgrade",
    "x-forwarded-client-cert",
  ]) {
    assert.equal(h[gone], undefined, gone);
  }
  assert.equal(h.te, "trailers");
  assert.equal(h["x-end-to-end"], "yes");
  assert.equal(h["x-forwarded-for"], "10.1.1.1, 127.0.0.1");
  assert.equal(h["x-forwarded-proto"], "http");
  assert.match(String(h["x-request-id"]), /^[0-9a-f-]{36}$/);

  await viaProxy(p.port, "http://app/", { headers: { "x-request-id": "abc-123" } });
  assert.equal(app.seen[1].headers["x-request-id"], "abc-123");
  assert.equal(app.seen[1].headers["x-forwarded-for"], "127.0.0.1");
});

test("a WebSocket upgrade to an app that answers 200 gets that answer (no tunnel); https:// absolute-form is refused", async (t) => {
  const app = await startApp("app");
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "app", endpoints: [{ port: app.port }] }] }),
  );
  t.after(() => Promise.all([p.close(), app.close()]));
  const ws = await viaProxy(p.port, "http://app/", {
    headers: { connection: "Upgrade", upgrade: "websocket" },
  });
  assert.equal(ws.status, 200);
  assert.equal(ws.headers.connection, "close");
  assert.equal(ws.headers.upgrade, undefined);
  assert.equal(app.seen.length, 1);
  assert.equal(app.seen[0].headers.upgrade, "websocket");
  const tlsAbs = await request(p.port, { path: "https://app/", headers: { host: "app" } });
  assert.equal(tlsAbs.status, 501);
  assert.equal(app.seen.length, 1);
});

test("CONNECT to a mesh service opens a tunnel whose requests are routed (Node's fetch through HTTP_PROXY)", async (t) => {
  const a = await startApp("a");
  const b = await startApp("b");
  const p = await startOutbound(
    buildSnapshot({
      services: [{ name: "reviews", port: 9080, endpoints: [{ port: a.port }, { port: b.port }] }],
    }),
  );
  t.after(() => Promise.all([p.close(), a.close(), b.close()]));

  // undici's ProxyAgent is what fetch uses under NODE_USE_ENV_PROXY: it tunnels http:// with CONNECT.
  const { ProxyAgent, fetch } = await import("undici");
  const agent = new ProxyAgent(`http://127.0.0.1:${p.port}`);
  const bodies: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await fetch(`http://reviews:9080/f${i}`, { dispatcher: agent });
    assert.equal(r.status, 200);
    bodies.push(await r.text());
  }
  assert.deepEqual(
    bodies.map((x) => x.split(" ")[0]).sort(),
    ["a", "a", "b", "b"],
    "balanced inside the tunnel",
  );
  assert.equal(a.seen.length + b.seen.length, 4);
  // The tunnel is counted as one client connection, and its close once.
  const opened = metricValue(p.metrics.render(), "weft_downstream_connections_total", {
    direction: "outbound",
  });
  await agent.close();
  const active = () =>
    metricValue(p.metrics.render(), "weft_downstream_connections_active", { direction: "outbound" });
  while (active() !== 0) await new Promise((r) => setImmediate(r));
  assert.ok(opened !== undefined && opened >= 1 && opened <= 2, `tunnels opened: ${opened}`);

  const refused = await new Promise<string>((resolve) => {
    const req = http.request({ host: "127.0.0.1", port: p.port, method: "CONNECT", path: "example.com:443" });
    req.on("connect", (res, socket) => {
      socket.destroy();
      resolve(`${res.statusCode} ${res.headers["x-weft-error"]}`);
    });
    req.on("response", (res) => resolve(`${res.statusCode} ${res.headers["x-weft-error"]}`));
    req.end();
  });
  assert.equal(refused, "404 no_route");
});

test("an upstream that sends no headers in time gets a 504 timeout", async (t) => {
  const app = await startApp("slow", undefined, { stream: () => {} });
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "slow", endpoints: [{ port: app.port }] }] }),
    {
      timeouts: { responseHeadersMs: 200 },
    },
  );
  t.after(() => Promise.all([p.close(), app.close()]));
  const r = await viaProxy(p.port, "http://slow/");
  assert.equal(r.status, 504);
  assert.equal(r.headers["x-weft-error"], "timeout");
});

test("grpc-status from the response becomes the grpc_status label", async (t) => {
  const app = await startApp("g", (_req, res) => {
    res.writeHead(200, { "content-type": "application/grpc-web", "grpc-status": "5" });
    res.end();
  });
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "g", endpoints: [{ port: app.port }] }] }),
  );
  t.after(() => Promise.all([p.close(), app.close()]));
  await viaProxy(p.port, "http://g/pkg.Svc/Method", { method: "POST", body: "x" });
  assert.equal(
    metricValue(p.metrics.render(), "weft_requests_total", {
      destination_service: "g.default",
      grpc_status: "5",
    }),
    1,
  );
});

test("endpoint pools survive config changes; removed endpoints' pools are closed", async (t) => {
  const a = await startApp("a");
  const b = await startApp("b");
  const snap = (ports: number[]) =>
    buildSnapshot({ services: [{ name: "svc", endpoints: ports.map((port) => ({ port })) }] });
  const p = await startOutbound(snap([a.port]));
  t.after(() => Promise.all([p.close(), a.close(), b.close()]));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  await viaProxy(p.port, "http://svc/", { agent });
  p.config.set(snap([a.port, b.port]));
  for (let i = 0; i < 4; i++) await viaProxy(p.port, "http://svc/", { agent });
  const opened = () =>
    metricValue(p.metrics.render(), "weft_upstream_connections_total", {
      direction: "outbound",
      tls: "false",
    });
  assert.equal(opened(), 2, "one connection per endpoint, the first one reused across the change");
  assert.equal(p.listener.pools.size, 2);
  p.config.set(snap([b.port]));
  assert.equal(p.listener.pools.size, 1);
  await viaProxy(p.port, "http://svc/", { agent });
  assert.equal(opened(), 2);
});

test("drain: in-flight requests finish, new connections are refused", async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const app = await startApp("slow", undefined, {
    stream: (req, res) => {
      req.resume();
      void gate.then(() => res.end("late"));
    },
  });
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "slow", endpoints: [{ port: app.port }] }] }),
  );
  t.after(() => Promise.all([p.close(), app.close()]));
  const inflight = viaProxy(p.port, "http://slow/");
  while (app.started.length === 0) await new Promise((r) => setImmediate(r));
  const drained = p.listener.drain(10_000);
  await assert.rejects(viaProxy(p.port, "http://slow/"), /ECONNREFUSED/);
  release();
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body, "late");
  assert.equal(r.headers.connection, "close");
  await drained;
});

test("a malformed upstream response is a 502 upstream_reset, never passed on", async (t) => {
  const responses: Record<string, string> = {
    "/both": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "/nul": "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok",
    "/garbage": "HELLO\r\n\r\n",
    "/close": "",
  };
  const server = net.createServer((s) => {
    s.on("error", () => {});
    s.once("data", (d) => {
      const path = d.toString("latin1").split(" ")[1];
      if (path === "/close") s.destroy();
      else s.end(responses[path], "latin1");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  const p = await startOutbound(buildSnapshot({ services: [{ name: "bad", endpoints: [{ port }] }] }));
  t.after(() => Promise.all([p.close(), new Promise((r) => server.close(r))]));
  for (const path of Object.keys(responses)) {
    const r = await viaProxy(p.port, `http://bad${path}`, { method: "POST", body: "x" });
    assert.equal(r.status, 502, path);
    assert.equal(r.headers["x-weft-error"], "upstream_reset", path);
    assert.equal(r.headers["x-a"], undefined);
  }
});

test("HEAD responses have no body; response trailers pass through and feed grpc_status", async (t) => {
  const app = await startApp("app", (req, res) => {
    if (req.method === "HEAD") {
      res.writeHead(200, { "content-length": "1234" });
      return res.end();
    }
    res.writeHead(200, { "content-type": "application/grpc-web", trailer: "grpc-status" });
    res.write("body");
    res.addTrailers({ "grpc-status": "7" });
    res.end();
  });
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "app", endpoints: [{ port: app.port }] }] }),
  );
  t.after(() => Promise.all([p.close(), app.close()]));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const head = await viaProxy(p.port, "http://app/h", { method: "HEAD", agent });
  assert.equal(head.status, 200);
  assert.equal(head.headers["content-length"], "1234");
  const trailers = await new Promise<NodeJS.Dict<string>>((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: p.port,
        path: "http://app/t",
        headers: { host: "app", te: "trailers" },
        agent,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.trailers));
      },
    );
    req.on("error", reject);
    req.end();
  });
  assert.equal(trailers["grpc-status"], "7");
  assert.equal(
    metricValue(p.metrics.render(), "weft_requests_total", {
      destination_service: "app.default",
      grpc_status: "7",
    }),
    1,
  );
});
