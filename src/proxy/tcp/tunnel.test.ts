// TCP proxying in-process, on real sockets and real mesh certificates: an --upstream port (UpstreamPort)
// in front of inbound listeners that take the tunnel ALPN (inbound-tunnel.ts). What the e2e test
// (test/e2e/tcp.test.ts) does not reach: refusals on the server side, bounds on the tunnel line,
// failover on an app that refuses behind a working sidecar, static endpoints, the circuit breaker
// and the idle timeout.

import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import tls from "node:tls";
import type { ClusterPolicy, InboundPort, ProxySnapshot } from "../../model/snapshot.ts";
import { Cell } from "../agent/cell.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { metricValue, startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";
import type { TlsMaterial } from "../types.ts";
import { inboundTunnelHandler } from "./inbound-tunnel.ts";
import { TCP_TUNNEL_ALPN } from "./tunnel-protocol.ts";
import { TcpProxy } from "./tcp-proxy.ts";
import { UpstreamPort } from "./upstream-port.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());
const DB = sid("db");
const dbProxy = { service: "db", namespace: "default", identity: DB };

async function listen(server: net.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as net.AddressInfo).port;
}

/** An app that writes "hello from NAME" and echoes what it gets. */
async function echoApp(name: string): Promise<{ port: number; close(): void }> {
  const server = net.createServer((s) => {
    s.on("error", () => s.destroy());
    s.write(`hello from ${name}\n`);
    s.pipe(s);
  });
  const port = await listen(server);
  return { port, close: () => server.close() };
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  s.close();
  await once(s, "close");
  return port;
}

/** A server sidecar's inbound listener for service db, whose tcp port 5432 is served on `appPort`. */
async function dbSidecar(appPort: number, extra: InboundPort[] = []) {
  const material = await ca.material(DB);
  const ports: InboundPort[] = [{ port: 5432, appPort, protocol: "tcp", name: "pg" }, ...extra];
  // The handler needs the listener's config and certificate cells, made by startInbound.
  const late: { handler?: (s: tls.TLSSocket) => void } = {};
  const p = await startInbound(buildSnapshot({ appPort: 1, inboundPorts: ports, proxy: dbProxy }), material, {
    alpn: { [TCP_TUNNEL_ALPN]: (s) => late.handler!(s) },
  });
  late.handler = inboundTunnelHandler({ config: p.config, tls: p.tls, metrics: p.metrics });
  return p;
}

async function clientPort(
  t: { after(fn: () => unknown): void },
  endpoints: { port: number; identity?: string }[],
  opts: { policy?: ClusterPolicy; idleTimeoutMs?: number } = {},
) {
  const config = new Cell<ProxySnapshot>();
  const material = new Cell<TlsMaterial>();
  material.set(await ca.material(sid("web")));
  const c = cluster("db.default", "db", endpoints);
  if (opts.policy) c.policy = opts.policy;
  config.set(
    buildSnapshot({ services: [{ name: "db", ports: [{ port: 5432, protocol: "tcp" }] }], clusters: [c] }),
  );
  const metrics = new ProxyMetrics();
  const http: net.Socket[] = [];
  const tcp = new TcpProxy({ config, tls: material, metrics, idleTimeoutMs: opts.idleTimeoutMs });
  const port = new UpstreamPort({ tcp, service: "db", http: (s) => void http.push(s) });
  const { port: local } = await port.listen(0);
  t.after(() => Promise.all([port.close(), tcp.close()]));
  return { local, metrics, port, http, config, material };
}

/** Connects and reads until `want` lines arrived. */
async function converse(port: number, send: string): Promise<string> {
  const s = net.connect(port, "127.0.0.1");
  let got = "";
  s.on("data", (d) => {
    got += d.toString();
    if (got.split("\n").length > 2) s.end();
  });
  s.write(send + "\n");
  await once(s, "close");
  return got;
}

test("a tunnel reaches the app's port for the service port; an app refusing behind its sidecar sends the connection on", async (t) => {
  const app = await echoApp("b");
  const [broken, working] = [await dbSidecar(await closedPort()), await dbSidecar(app.port)];
  t.after(() => Promise.all([broken.close(), working.close(), app.close()]));
  const c = await clientPort(
    t,
    [
      { port: broken.port, identity: DB },
      { port: working.port, identity: DB },
    ],
    { policy: { loadBalancer: { type: "RoundRobin" } } },
  );
  for (let i = 0; i < 3; i++) assert.equal(await converse(c.local, "ping"), "hello from b\nping\n");
  const m = c.metrics.render();
  assert.equal(metricValue(m, "weft_upstream_connect_failures_total", { reason: "tcp_tunnel" }), 1);
  assert.equal(
    metricValue(m, "weft_tcp_connections_opened_total", {
      direction: "outbound",
      destination_service: "db.default",
    }),
    3,
  );
  assert.equal(
    metricValue(working.metrics.render(), "weft_tcp_connections_opened_total", {
      direction: "inbound",
      source_service: "web.default",
    }),
    3,
  );
});

test("a static endpoint (no identity) gets a plain TCP connection", async (t) => {
  const app = await echoApp("static");
  t.after(() => app.close());
  const c = await clientPort(t, [{ port: app.port }]);
  assert.equal(await converse(c.local, "x"), "hello from static\nx\n");
});

/** A raw tunnel client: TLS with the tunnel ALPN, sends `bytes` then ends its side, returns what comes back until close. */
async function rawTunnel(port: number, bytes: string): Promise<string> {
  const me = await ca.material(sid("web"));
  const s = tls.connect({
    port,
    host: "127.0.0.1",
    key: me.keyPem,
    cert: me.certChainPem,
    ca: me.trustBundlePem,
    ALPNProtocols: [TCP_TUNNEL_ALPN],
    checkServerIdentity: () => undefined,
  });
  await once(s, "secureConnect");
  assert.equal(s.alpnProtocol, TCP_TUNNEL_ALPN);
  let got = "";
  s.on("data", (d) => (got += d.toString()));
  s.on("error", () => {});
  s.end(bytes);
  await once(s, "close");
  return got;
}

test("the server sidecar refuses a tunnel to a non-tcp port, a malformed request, and an over-long line", async (t) => {
  const app = await echoApp("db");
  const p = await dbSidecar(app.port, [{ port: 80, appPort: app.port, protocol: "http" }]);
  t.after(() => Promise.all([p.close(), app.close()]));
  assert.match(await rawTunnel(p.port, "tcp 80\n"), /^error no_route db\.default has no tcp port 80\n$/);
  assert.match(await rawTunnel(p.port, "tcp 9999\n"), /^error no_route /);
  assert.match(await rawTunnel(p.port, "GET / HTTP/1.1\n"), /^error bad_request malformed tunnel request/);
  assert.equal(await rawTunnel(p.port, "tcp " + "1".repeat(400)), "", "cut without an answer");
  assert.equal(await rawTunnel(p.port, "tcp 5432\nhi\n"), "ok\nhello from db\nhi\n");
});

test("maxConnections: a connection over the limit is closed at once and counted", async (t) => {
  const app = await echoApp("db");
  const p = await dbSidecar(app.port);
  t.after(() => Promise.all([p.close(), app.close()]));
  const c = await clientPort(t, [{ port: p.port, identity: DB }], {
    policy: { circuitBreaker: { maxConnections: 1 } },
  });
  const held = net.connect(c.local, "127.0.0.1");
  await once(held, "data"); // connected through to the app
  const over = net.connect(c.local, "127.0.0.1");
  over.on("data", () => assert.fail("the connection over the limit must not be served"));
  await once(over, "close");
  assert.equal(
    metricValue(c.metrics.render(), "weft_circuit_breaker_overflows_total", { limit: "max_connections" }),
    1,
  );
  held.destroy();
});

test("an idle connection is cut after the idle timeout, both sides", async (t) => {
  const app = await echoApp("db");
  const p = await dbSidecar(app.port);
  t.after(() => Promise.all([p.close(), app.close()]));
  const c = await clientPort(t, [{ port: p.port, identity: DB }], { idleTimeoutMs: 100 });
  const s = net.connect(c.local, "127.0.0.1");
  await once(s, "data");
  const started = performance.now();
  await once(s, "close");
  assert.ok(performance.now() - started >= 90, "not before the idle timeout");
  const m = c.metrics.render();
  assert.equal(metricValue(m, "weft_tcp_connections_closed_total", { direction: "outbound" }), 1);
  assert.equal(metricValue(m, "weft_tcp_connections_active", { direction: "outbound" }), 0);
});

test("a port whose service port is not tcp is handed to the HTTP listener", async (t) => {
  const config = new Cell<ProxySnapshot>();
  config.set(buildSnapshot({ services: [{ name: "web", port: 80, endpoints: [{ port: 1 }] }] }));
  const handed: net.Socket[] = [];
  const tcp = new TcpProxy({ config, tls: new Cell<TlsMaterial>(), metrics: new ProxyMetrics() });
  const port = new UpstreamPort({
    tcp,
    service: "web",
    http: (s) => {
      handed.push(s);
      s.end();
    },
  });
  const { port: local } = await port.listen(0);
  t.after(() => port.close());
  const s = net.connect(local, "127.0.0.1");
  await once(s, "close");
  assert.equal(handed.length, 1);
});

test("CONNECT to a tcp port through the outbound listener: 200 once the destination accepted, then bytes; 503 when nothing accepts", async (t) => {
  const app = await echoApp("db");
  const p = await dbSidecar(app.port);
  t.after(() => Promise.all([p.close(), app.close()]));
  const material = await ca.material(sid("web"));
  const refusing = await closedPort();
  const snapshot = (endpoints: { port: number; identity?: string }[]) =>
    buildSnapshot({
      services: [{ name: "db", ports: [{ port: 5432, protocol: "tcp" }] }],
      clusters: [cluster("db.default", "db", endpoints)],
    });
  const config = new Cell<ProxySnapshot>();
  const tlsCell = new Cell<TlsMaterial>();
  tlsCell.set(material);
  config.set(snapshot([{ port: p.port, identity: DB }]));
  const metrics = new ProxyMetrics();
  const tcp = new TcpProxy({ config, tls: tlsCell, metrics });
  const out = await startOutbound(config.current(), { tls: material, metrics, tcp });
  t.after(() => Promise.all([out.close(), tcp.close()]));

  const tunnel = async () => {
    const s = net.connect(out.port, "127.0.0.1");
    let got = "";
    s.on("data", (d) => (got += d.toString()));
    s.write("CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n");
    return { s, got: () => got };
  };
  const a = await tunnel();
  while (!a.got().includes("hello from db\n")) await once(a.s, "data");
  assert.match(a.got(), /^HTTP\/1\.1 200 Connection Established\r\n\r\nhello from db\n$/);
  a.s.end("ping\n");
  await once(a.s, "close");
  assert.match(a.got(), /hello from db\nping\n$/);

  config.set(snapshot([{ port: refusing }]));
  out.config.set(config.current()!);
  const b = await tunnel();
  await once(b.s, "close");
  assert.match(b.got(), /^HTTP\/1\.1 503 /);
  assert.match(b.got(), /x-weft-error: upstream_unavailable/i);
});
