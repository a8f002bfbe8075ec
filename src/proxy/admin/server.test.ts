import { test } from "node:test";
import assert from "node:assert/strict";
import { Cell } from "../agent/cell.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { request } from "../testing/client.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import type { TlsMaterial } from "../types.ts";
import { createAdminServer } from "./server.ts";

test("admin: /ready names what is missing, /config and /certs never show keys, /metrics, POST /drain", async (t) => {
  const ca = await createTestCa();
  const config = new Cell<ProxySnapshot>();
  const tls = new Cell<TlsMaterial>();
  const metrics = new ProxyMetrics();
  let drained = 0;
  let listenersUp = false;
  const admin = createAdminServer({
    token: "test-admin-token-0123456789",
    metrics,
    config,
    tls,
    isReady: () => listenersUp && !!config.current() && !!tls.current(),
    onDrain: async () => {
      drained++;
    },
  });
  const { port } = await admin.listen(0);
  t.after(() => Promise.all([admin.close(), ca.cleanup()]));

  let r = await request(port, { path: "/ready" });
  assert.equal(r.status, 503);
  assert.equal(
    r.body,
    "not ready: waiting for config snapshot from the control plane, workload certificate\n",
  );
  assert.equal((await request(port, { path: "/config" })).status, 503);
  assert.equal((await request(port, { path: "/certs" })).status, 503);

  const material = await ca.material(sid("web"));
  tls.set(material);
  config.set(buildSnapshot({ version: "v7" }));
  r = await request(port, { path: "/ready" });
  assert.equal(r.status, 503);
  assert.match(r.body, /listeners/);
  listenersUp = true;
  r = await request(port, { path: "/ready" });
  assert.equal(r.status, 200);
  assert.equal(r.body, "ready\n");

  const cfg = await request(port, { path: "/config" });
  assert.equal(cfg.status, 200);
  assert.equal(JSON.parse(cfg.body).version, "v7");

  const certs = await request(port, { path: "/certs" });
  assert.equal(certs.status, 200);
  const info = JSON.parse(certs.body);
  assert.equal(info.spiffeId, sid("web"));
  assert.equal(info.serial.toLowerCase(), material.serial.toLowerCase());
  assert.equal(new Date(info.notAfter).getTime(), material.notAfter.getTime());
  assert.equal(info.trustBundle.length, 1);
  assert.doesNotMatch(certs.body, /PRIVATE KEY|BEGIN/);

  metrics.localReplies.series("outbound", "no_route").inc();
  const m = await request(port, { path: "/metrics" });
  assert.match(String(m.headers["content-type"]), /^text\/plain; version=0.0.4/);
  assert.match(m.body, /^weft_local_replies_total\{direction="outbound",code="no_route"\} 1$/m);

  assert.equal((await request(port, { path: "/drain" })).status, 405);
  const d = await request(port, {
    path: "/drain",
    method: "POST",
    headers: { authorization: "Bearer test-admin-token-0123456789" },
  });
  assert.equal(d.status, 202);
  assert.equal(drained, 1);
  assert.equal((await request(port, { path: "/nope" })).status, 404);
});
