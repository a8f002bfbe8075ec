// Upgrades at the inbound listener take its filter chain (inbound-upgrade.ts): the rate limit takes
// one token per upgrade and answers an empty bucket 429 with Retry-After, before the app sees it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { createTestCa, sid } from "../testing/certs.ts";
import { metricValue, startInbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { SWITCHING, startRawUpgradeApp } from "../testing/upgrade-apps.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());

/** Writes an upgrade request on a new connection to `port`; resolves with what was read until the close. */
async function upgrade(port: number): Promise<string> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await once(s, "connect");
  s.write("GET /chat HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n");
  let got = "";
  s.on("data", (c: Buffer) => (got += c.toString("latin1")));
  await once(s, "close");
  return got;
}

test("inbound rate limit: an upgrade takes a token; an empty bucket answers 429 and the app never sees it", async (t) => {
  const app = await startRawUpgradeApp((_req, socket) => socket.end(SWITCHING));
  const snap = buildSnapshot({
    appPort: app.port,
    mtlsMode: "PERMISSIVE",
    proxy: { service: "app", namespace: "default", identity: sid("app") },
  });
  snap.inbound.rateLimit = { requestsPerSecond: 1, burst: 1, perSource: false };
  const inbound = await startInbound(snap, await ca.material(sid("app")), { rateLimitClock: () => 0 });
  t.after(() => Promise.all([inbound.close(), app.close()]));

  assert.match(await upgrade(inbound.port), /^HTTP\/1\.1 101 /);
  const limited = await upgrade(inbound.port);
  assert.match(limited, /^HTTP\/1\.1 429 /);
  assert.match(limited, /x-weft-error: rate_limited/);
  assert.match(limited, /retry-after: 1/i);
  assert.equal(app.upgrades.length, 1);
  const m = inbound.metrics.render();
  assert.equal(metricValue(m, "weft_upgrades_total", { direction: "inbound", outcome: "refused" }), 1);
  assert.equal(metricValue(m, "weft_upgrades_total", { direction: "inbound", outcome: "101" }), 1);
});
