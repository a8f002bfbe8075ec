// weft_tcp_* series shrink with the config, as the HTTP per-destination series do: a tcp destination
// that leaves the config takes its series with it — at once when no connection to it is open, or when
// its last open connection ends (until then that connection's bytes, active gauge and close are still
// counted). A destination that comes back starts new series.

import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import tls from "node:tls";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { Cell } from "../agent/cell.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { metricValue, startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";
import type { TlsMaterial } from "../types.ts";
import { inboundTunnelHandler } from "./inbound-tunnel.ts";
import { TcpProxy } from "./tcp-proxy.ts";
import { TCP_TUNNEL_ALPN } from "./tunnel-protocol.ts";
import { UpstreamPort } from "./upstream-port.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());
const DB = sid("db");

const OPENED = "weft_tcp_connections_opened_total";
const ACTIVE = "weft_tcp_connections_active";
const DB_LABELS = { direction: "outbound", source_service: "web.default", destination_service: "db.default" };

/** Steps the event loop until `ready()` holds (bounded: fails rather than hangs). */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000 && !ready(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(ready(), `never: ${what}`);
}

test("a tcp destination's weft_tcp_* series leave with it, once its last open connection has ended", async (t) => {
  // The app behind db's sidecar: greets, then echoes.
  const app = net.createServer((s) => {
    s.on("error", () => s.destroy());
    s.write("hello\n");
    s.pipe(s);
  });
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  t.after(() => app.close());
  const appPort = (app.address() as net.AddressInfo).port;
  const late: { handler?: (s: tls.TLSSocket) => void } = {};
  const db = await startInbound(
    buildSnapshot({
      appPort: 1,
      inboundPorts: [{ port: 5432, appPort, protocol: "tcp", name: "pg" }],
      proxy: { service: "db", namespace: "default", identity: DB },
    }),
    await ca.material(DB),
    { alpn: { [TCP_TUNNEL_ALPN]: (s) => late.handler!(s) } },
  );
  late.handler = inboundTunnelHandler({ config: db.config, tls: db.tls, metrics: db.metrics });
  t.after(() => db.close());

  // The client sidecar as startProxy assembles it: one metrics registry, one config, shared by the
  // outbound listener (which prunes series on each config) and the TCP proxy.
  const withDb = buildSnapshot({
    services: [{ name: "db", ports: [{ port: 5432, protocol: "tcp" }] }],
    clusters: [cluster("db.default", "db", [{ port: db.port, identity: DB }])],
  });
  const withoutDb = buildSnapshot({ services: [{ name: "other", endpoints: [] }] });
  const config = new Cell<ProxySnapshot>();
  const material = new Cell<TlsMaterial>();
  material.set(await ca.material(sid("web")));
  config.set(withDb);
  const metrics = new ProxyMetrics();
  const tcp = new TcpProxy({ config, tls: material, metrics });
  const out = await startOutbound(withDb, { tls: material.current(), metrics, tcp });
  const port = new UpstreamPort({ tcp, service: "db", http: (s) => void s.destroy() });
  const { port: local } = await port.listen(0);
  t.after(() => Promise.all([port.close(), out.close(), tcp.close()]));
  const apply = (s: ProxySnapshot) => {
    config.set(s);
    out.config.set(s);
  };
  const value = (name: string) => metricValue(metrics.render(), name, DB_LABELS);
  const open = async () => {
    const s = net.connect(local, "127.0.0.1");
    s.on("error", () => {});
    await once(s, "data"); // the app's greeting: connected end to end
    return s;
  };

  const a = await open();
  const b = await open();
  a.end();
  await once(a, "close");
  await until(() => value(ACTIVE) === 1, "a's close counted");
  assert.equal(value(OPENED), 2);

  // db leaves the config while b is open: its series stay, and b is still counted.
  apply(withoutDb);
  assert.equal(value(ACTIVE), 1, "the open connection's series are kept");
  b.end("bye\n");
  await once(b, "close");
  await until(() => value(OPENED) === undefined, "the series dropped after b ended");
  assert.equal(value(ACTIVE), undefined);
  assert.doesNotMatch(metrics.render(), /weft_tcp_[a-z_]+\{[^}]*destination_service="db\.default"/);

  // db comes back: new series from zero. It leaves again with nothing open: its series go at once.
  apply(withDb);
  const c = await open();
  c.end();
  await once(c, "close");
  await until(() => value(ACTIVE) === 0, "c's close counted");
  assert.equal(value(OPENED), 1, "a returning destination starts new series");
  apply(withoutDb);
  assert.equal(value(OPENED), undefined, "dropped with the config change");
  assert.doesNotMatch(metrics.render(), /destination_service="db\.default"/);
});
