// Upgrades take the route's own filter classes (outbound-upgrade.ts): an invalid backend answers
// 500 invalid_backend as for requests, a RequestRedirect answers without a backend, and a URLRewrite
// changes the path and Host the app sees. Every refusal closes the connection and is counted.

import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import type { WeightedBackend } from "../../model/snapshot.ts";
import { metricValue, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";
import { SWITCHING, startRawUpgradeApp } from "../testing/upgrade-apps.ts";

const UPGRADE = "Connection: Upgrade\r\nUpgrade: x-test\r\n";

const GHOST: WeightedBackend = {
  cluster: "ghost.default",
  weight: 1,
  invalid: { reason: "BackendNotFound", message: "Service ghost.default does not exist" },
};

/** Writes `bytes` on a new connection to `port`; resolves with what was read until `until` or the close. */
async function send(port: number, bytes: string, until?: RegExp): Promise<string> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await once(s, "connect");
  s.write(bytes);
  let got = "";
  const closed = once(s, "close");
  s.on("data", (c: Buffer) => {
    got += c.toString("latin1");
    if (until !== undefined && until.test(got)) s.destroy();
  });
  await closed;
  return got;
}

test("upgrades run the route's filters: invalid backend 500, redirect, URL rewrite", async (t) => {
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
              name: "ns/ghost/0",
              matches: [{ path: { type: "PathPrefix", value: "/ghost" } }],
              backends: [GHOST],
            },
            {
              name: "ns/moved/0",
              matches: [{ path: { type: "PathPrefix", value: "/old" } }],
              backends: [],
              filters: { redirect: { statusCode: 301, path: { type: "ReplacePrefixMatch", value: "/new" } } },
            },
            {
              name: "ns/api/0",
              matches: [{ path: { type: "PathPrefix", value: "/api" } }],
              backends: [{ cluster: "app.default", weight: 1 }],
              filters: {
                rewrite: { hostname: "internal", path: { type: "ReplacePrefixMatch", value: "/v2" } },
              },
            },
          ],
        },
      ],
    }),
  );
  t.after(() => p.close());

  // Each refusal is answered and the connection closed (send() resolves on the close).
  const ghost = await send(p.port, `GET /ghost HTTP/1.1\r\nHost: app\r\n${UPGRADE}\r\n`);
  assert.match(ghost, /^HTTP\/1\.1 500 /);
  assert.match(ghost, /x-weft-error: invalid_backend/);
  assert.match(ghost, /Service ghost\.default does not exist/);
  const moved = await send(p.port, `GET /old/x?q=1 HTTP/1.1\r\nHost: app\r\n${UPGRADE}\r\n`);
  assert.match(moved, /^HTTP\/1\.1 301 /);
  assert.match(moved, /location: http:\/\/app\/new\/x\?q=1/i);
  assert.equal(app.upgrades.length, 0, "nothing reached the app");
  const m = p.metrics.render();
  assert.equal(
    metricValue(m, "weft_upgrades_total", { destination_service: "app.default", outcome: "refused" }),
    2,
  );

  const ok = await send(p.port, `GET /api/chat?room=1 HTTP/1.1\r\nHost: app\r\n${UPGRADE}\r\n`, /\r\n\r\n/);
  assert.match(ok, /^HTTP\/1\.1 101 /);
  assert.equal(app.upgrades[0].url, "/v2/chat?room=1");
  assert.equal(app.upgrades[0].headers.host, "internal");
});
