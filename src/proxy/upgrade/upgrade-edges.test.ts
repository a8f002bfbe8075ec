// Upgrades at the edges: refusals and non-101 answers pass through, hostile heads are refused,
// half-close crosses the mTLS pair, idle tunnels and abandoned ones are torn down on both sides,
// routes and policies apply at the upgrade (matches, header filters, fault aborts, circuit breaker,
// a refused connection going to another endpoint).

import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { WebSocket } from "ws";
import { createTestCa, sid } from "../testing/certs.ts";
import { metricValue, startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";
import { SWITCHING, startRawUpgradeApp, startWsEcho } from "../testing/upgrade-apps.ts";
import { waitUntil } from "../../../test/helpers/mesh.ts";
import { FakeTimers } from "../testing/fake-timers.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());

const UPGRADE_HEAD = "Connection: Upgrade\r\nUpgrade: x-test\r\n";

/** Writes `bytes` on a new connection to `port`; resolves with everything read until the close. */
async function exchange(port: number, bytes: string): Promise<string> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await once(s, "connect");
  s.write(bytes);
  let got = "";
  s.on("data", (c: Buffer) => (got += c.toString("latin1")));
  await once(s, "close");
  return got;
}

/** Opens an upgrade through `port` and resolves once the 101 head arrived, with the socket. */
async function upgradeThrough(
  port: number,
  path = "/",
  extra = "",
): Promise<{ socket: net.Socket; head: string }> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await once(socket, "connect");
  socket.write(`GET ${path} HTTP/1.1\r\nHost: app\r\n${UPGRADE_HEAD}${extra}\r\n`);
  let got = "";
  while (!got.includes("\r\n\r\n")) {
    const [c] = await once(socket, "data");
    got += (c as Buffer).toString("latin1");
  }
  const end = got.indexOf("\r\n\r\n") + 4;
  if (got.length > end) socket.unshift(Buffer.from(got.slice(end), "latin1"));
  return { socket, head: got.slice(0, end) };
}

async function outboundTo(t: { after(fn: () => unknown): void }, ports: number[], extra = {}) {
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "app", endpoints: ports.map((port) => ({ port })) }] }),
    extra,
  );
  t.after(() => p.close());
  return p;
}

test("the app refusing the handshake: its answer passes through, no tunnel, counted as refused", async (t) => {
  const app = await startWsEcho({ refuse: 401 });
  t.after(() => app.close());
  const p = await outboundTo(t, [app.port]);
  const ws = new WebSocket(`ws://127.0.0.1:${p.port}/`, { headers: { host: "app" } });
  ws.on("error", () => {});
  const [, res] = await once(ws, "unexpected-response");
  assert.equal(res.statusCode, 401);
  res.destroy();
  const m = p.metrics.render();
  assert.equal(
    metricValue(m, "weft_upgrades_total", { destination_service: "app.default", outcome: "refused" }),
    1,
  );
  assert.equal(metricValue(m, "weft_upgrades_total", { outcome: "101" }), 0);
});

test("a non-101 response that carries Upgrade is an ordinary response: Upgrade removed, body intact, connection closed", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) =>
    socket.end(
      "HTTP/1.1 200 OK\r\nConnection: upgrade\r\nUpgrade: x-test\r\nContent-Length: 9\r\n\r\nnot a 101",
    ),
  );
  t.after(() => app.close());
  const p = await outboundTo(t, [app.port]);
  const got = await exchange(p.port, `GET / HTTP/1.1\r\nHost: app\r\n${UPGRADE_HEAD}\r\n`);
  assert.match(got, /^HTTP\/1\.1 200 OK\r\n/);
  assert.doesNotMatch(got, /\r\nupgrade:/i);
  assert.match(got, /\r\nConnection: close\r\n/i);
  assert.ok(got.endsWith("\r\n\r\nnot a 101"), got);
});

test("hostile heads: an Upgrade with a body (Content-Length or chunked) is refused before the app sees it", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) => socket.end(SWITCHING));
  t.after(() => app.close());
  const p = await outboundTo(t, [app.port]);
  for (const framing of ["Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n"]) {
    const body = framing.startsWith("Content") ? "hello" : "5\r\nhello\r\n0\r\n\r\n";
    const got = await exchange(
      p.port,
      `POST / HTTP/1.1\r\nHost: app\r\n${UPGRADE_HEAD}${framing}\r\n${body}`,
    );
    assert.match(got, /^HTTP\/1\.1 400 /, framing);
    assert.match(got, /x-weft-error: bad_request/);
    assert.match(got, /must not have a body/);
  }
  assert.equal(app.upgrades.length, 0);
  assert.equal(app.requests.length, 0);
});

test("half-close crosses the mTLS pair: the client's FIN reaches the app, which still answers", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) => {
    socket.write(SWITCHING);
    let data = "";
    socket.on("data", (c: Buffer) => (data += c));
    socket.on("end", () => socket.end(`got:${data}`));
  });
  const ECHO = sid("echo");
  const inbound = await startInbound(
    buildSnapshot({ appPort: app.port, proxy: { service: "echo", namespace: "default", identity: ECHO } }),
    await ca.material(ECHO),
  );
  const outbound = await startOutbound(
    buildSnapshot({ services: [{ name: "app", endpoints: [{ port: inbound.port, identity: ECHO }] }] }),
    { tls: await ca.material(sid("web")) },
  );
  t.after(() => Promise.all([outbound.close(), inbound.close(), app.close()]));
  const { socket, head } = await upgradeThrough(outbound.port);
  assert.match(head, /^HTTP\/1\.1 101 /);
  socket.end("abc");
  let got = "";
  socket.on("data", (c: Buffer) => (got += c));
  await once(socket, "close");
  assert.equal(got, "got:abc");
  await app.allClosed();
});

test("an idle tunnel is closed on both sides after the idle timeout", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) => socket.write(SWITCHING));
  t.after(() => app.close());
  const p = await outboundTo(t, [app.port], { upgradeIdleTimeoutMs: 150 });
  const started = performance.now();
  const { socket, head } = await upgradeThrough(p.port);
  assert.match(head, /^HTTP\/1\.1 101 /);
  await once(socket, "close");
  assert.ok(performance.now() - started >= 140);
  await app.allClosed();
});

test("clients going away tear down their upstream connections: none left open", async (t) => {
  const app = await startWsEcho();
  t.after(() => app.close());
  const p = await outboundTo(t, [app.port]);
  const clients: WebSocket[] = [];
  for (let i = 0; i < 5; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${p.port}/`, { headers: { host: "app" } });
    await once(ws, "open");
    clients.push(ws);
  }
  assert.equal(app.open(), 5);
  for (const ws of clients) ws.terminate(); // no close frame: the TCP connection just goes away
  await app.allClosed();
  assert.equal(app.open(), 0);
});

test("no 101 within the response-headers timeout: 504 timeout, the upstream connection closed", async (t) => {
  const app = await startRawUpgradeApp(() => {});
  t.after(() => app.close());
  const p = await outboundTo(t, [app.port], { timeouts: { responseHeadersMs: 100 } });
  const got = await exchange(p.port, `GET / HTTP/1.1\r\nHost: app\r\n${UPGRADE_HEAD}\r\n`);
  assert.match(got, /^HTTP\/1\.1 504 /);
  assert.match(got, /x-weft-error: timeout/);
  await app.allClosed();
});

test("routes apply at the upgrade: header match, request header filter, fault abort on the other route", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) => socket.end(SWITCHING));
  t.after(() => app.close());
  const p = await startOutbound(
    buildSnapshot({
      clusters: [cluster("app.default", "app", [{ port: app.port }])],
      services: [
        {
          name: "app",
          routes: [
            {
              name: "ns/canary/0",
              matches: [{ headers: [{ type: "Exact", name: "x-canary", value: "1" }] }],
              backends: [{ cluster: "app.default", weight: 1 }],
              filters: { requestHeaders: { set: [{ name: "x-route", value: "canary" }] } },
            },
            {
              name: "ns/rest/0",
              matches: [],
              backends: [{ cluster: "app.default", weight: 1 }],
              fault: { abort: { status: 418, percent: 100 } },
            },
          ],
        },
      ],
    }),
  );
  t.after(() => p.close());
  const refused = await exchange(p.port, `GET / HTTP/1.1\r\nHost: app\r\n${UPGRADE_HEAD}\r\n`);
  assert.match(refused, /^HTTP\/1\.1 418 /);
  assert.match(refused, /x-weft-error: fault_injected/);
  assert.equal(app.upgrades.length, 0);
  const { socket, head } = await upgradeThrough(p.port, "/", "x-canary: 1\r\n");
  socket.destroy();
  assert.match(head, /^HTTP\/1\.1 101 /);
  assert.equal(app.upgrades[0].headers["x-route"], "canary");
});

test("circuit breaker: an open tunnel counts against maxRequests; a refused connection goes to another endpoint", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) => socket.write(SWITCHING));
  t.after(() => app.close());
  const dead = net.createServer();
  dead.listen(0, "127.0.0.1");
  await once(dead, "listening");
  const deadPort = (dead.address() as net.AddressInfo).port;
  dead.close(); // nothing listens there any more: connections are refused
  const c = cluster("app.default", "app", [{ port: deadPort }, { port: app.port }]);
  c.policy = { loadBalancer: { type: "RoundRobin" }, circuitBreaker: { maxRequests: 2 } };
  const p = await startOutbound(
    buildSnapshot({
      clusters: [c],
      services: [
        {
          name: "app",
          routes: [{ name: "r", matches: [], backends: [{ cluster: "app.default", weight: 1 }] }],
        },
      ],
    }),
  );
  t.after(() => p.close());
  // Round robin: one of the two goes to the dead endpoint first, and is sent to the app instead.
  const first = await upgradeThrough(p.port);
  const second = await upgradeThrough(p.port);
  assert.match(first.head, /^HTTP\/1\.1 101 /);
  assert.match(second.head, /^HTTP\/1\.1 101 /);
  const m = p.metrics.render();
  assert.equal(metricValue(m, "weft_upstream_connect_failures_total", { reason: "connect" }), 1);
  const third = await exchange(p.port, `GET / HTTP/1.1\r\nHost: app\r\n${UPGRADE_HEAD}\r\n`);
  assert.match(third, /^HTTP\/1\.1 503 /);
  assert.match(third, /x-weft-error: circuit_open/);
  first.socket.destroy();
  second.socket.destroy();
  await app.allClosed();
  assert.equal(app.upgrades.length, 2);
  // Both tunnels closed: nothing is in flight any more, and the balancer's load is back to 0.
  await waitUntil(
    () =>
      metricValue(p.metrics.render(), "weft_upgrades_active", { destination_service: "app.default" }) === 0,
    5_000,
    "the proxy to close both tunnels",
  );
  const [clusterState] = p.listener.describeClusters();
  assert.equal(clusterState.active, 0);
  assert.deepEqual(
    clusterState.endpoints.map((e) => e.inflight),
    [0, 0],
  );
});

test("inbound PERMISSIVE: a plaintext peer's upgrade reaches the app, without a client certificate header", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) => socket.end(`${SWITCHING}plain tunnel`));
  const inbound = await startInbound(
    buildSnapshot({
      appPort: app.port,
      mtlsMode: "PERMISSIVE",
      proxy: { service: "app", namespace: "default", identity: sid("app") },
    }),
    await ca.material(sid("app")),
  );
  t.after(() => Promise.all([inbound.close(), app.close()]));
  const got = await exchange(inbound.port, `GET /p HTTP/1.1\r\nHost: app\r\n${UPGRADE_HEAD}\r\n`);
  assert.match(got, /^HTTP\/1\.1 101 /);
  assert.ok(got.endsWith("\r\n\r\nplain tunnel"), got);
  assert.equal(app.upgrades[0].headers["x-forwarded-client-cert"], undefined);
  assert.equal(app.upgrades[0].headers["x-forwarded-proto"], "http");
  assert.equal(
    metricValue(inbound.metrics.render(), "weft_upgrades_total", {
      source_service: "unknown",
      outcome: "101",
    }),
    1,
  );
});

test("a fault delay holds the 101 on the injected clock; the 101 wait then runs on it too", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) => socket.write(SWITCHING));
  t.after(() => app.close());
  const timers = new FakeTimers();
  let scheduled: () => void = () => {};
  const clock = {
    setTimeout: (fn: () => void, ms: number) => {
      const id = timers.setTimeout(fn, ms);
      scheduled();
      return id;
    },
    clearTimeout: (id: unknown) => timers.clearTimeout(id),
    random: () => 0,
  };
  const p = await startOutbound(
    buildSnapshot({
      clusters: [cluster("app.default", "app", [{ port: app.port }])],
      services: [
        {
          name: "app",
          routes: [
            {
              name: "ns/slow/0",
              matches: [],
              backends: [{ cluster: "app.default", weight: 1 }],
              fault: { delay: { ms: 5_000, percent: 100 } },
              timeouts: { requestMs: 60_000 },
            },
          ],
        },
      ],
    }),
    { clock },
  );
  t.after(() => p.close());
  const delayed = new Promise<void>((r) => (scheduled = r));
  const upgrade = upgradeThrough(p.port);
  await delayed;
  assert.equal(timers.pending, 1, "the delay");
  assert.equal(app.upgrades.length, 0, "held during the delay");
  const waiting = new Promise<void>((r) => (scheduled = r));
  await timers.advance(5_000);
  await waiting; // the 101 wait (timeouts.requestMs) was scheduled on the same clock
  const { socket, head } = await upgrade;
  assert.match(head, /^HTTP\/1\.1 101 /);
  assert.equal(timers.pending, 0, "the 101 cleared its timeout");
  socket.destroy();
  assert.equal(metricValue(p.metrics.render(), "weft_faults_injected_total", { fault: "delay" }), 1);
});

test("bytes sent after the upgrade head reach the app only after its 101: a refusing app never reads them as a request", async (t) => {
  // A raw app that records every byte and refuses the first request, keeping the connection open
  // (as a server that would parse the next request from it does).
  let seen = "";
  const app = net.createServer((socket) => {
    socket.on("data", (c: Buffer) => {
      const first = seen === "";
      seen += c.toString("latin1");
      if (first) socket.write("HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno way");
    });
    socket.on("error", () => {});
  });
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  const closed = new Promise<void>((r) => app.on("connection", (s) => s.on("close", () => r())));
  t.after(() => app.close());
  const p = await outboundTo(t, [(app.address() as net.AddressInfo).port]);
  const got = await exchange(
    p.port,
    `GET / HTTP/1.1\r\nHost: app\r\n${UPGRADE_HEAD}\r\nGET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n`,
  );
  assert.match(got, /^HTTP\/1\.1 403 /);
  assert.ok(got.endsWith("no way"), got);
  await closed; // the proxy closed its connection to the app after the refusal
  assert.doesNotMatch(seen, /smuggled/);
});
