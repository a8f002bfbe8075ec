// The proxy's side of a route's backendRefs (Gateway API): an invalid backend (a Service that does
// not exist, or one another namespace has not granted) keeps its share of the traffic and that share
// is answered 500 invalid_backend, as is every request to a rule with no backend at all; a backend's
// own header filters apply only to requests sent to it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import { startApp } from "../testing/apps.ts";
import { viaProxy } from "../testing/client.ts";
import { metricValue, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";
import { snapshotViolations } from "../../model/snapshot-consistency.ts";
import type { WeightedBackend } from "../../model/snapshot.ts";

const GHOST: WeightedBackend = {
  cluster: "ghost.default",
  weight: 1,
  invalid: { reason: "BackendNotFound", message: "Service ghost.default does not exist" },
};

test("an invalid backend answers its share 500 invalid_backend; a Service without endpoints stays 503", async (t) => {
  const v1 = await startApp("v1");
  const snap = buildSnapshot({
    clusters: [
      cluster("reviews.default", "reviews", [{ port: v1.port }]),
      cluster("empty.default", "empty", []),
    ],
    services: [
      {
        name: "reviews",
        routes: [
          {
            name: "default/reviews/0",
            matches: [{ path: { type: "PathPrefix", value: "/split" } }],
            backends: [{ cluster: "reviews.default", weight: 1 }, GHOST],
          },
          { name: "default/reviews/1", matches: [], backends: [GHOST] },
        ],
      },
      {
        name: "empty",
        routes: [{ name: "default", matches: [], backends: [{ cluster: "empty.default", weight: 1 }] }],
      },
    ],
  });
  // The snapshot check accepts an invalid backend without a cluster (it is not a dangling reference).
  assert.deepEqual(snapshotViolations(snap).violations, []);
  const p = await startOutbound(snap);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => Promise.all([p.close(), v1.close(), agent.destroy()]));

  const all = await viaProxy(p.port, "http://reviews/", { agent });
  assert.equal(all.status, 500);
  assert.equal(all.headers["x-weft-error"], "invalid_backend");
  assert.equal(
    all.body,
    "invalid_backend: route default/reviews/1 of reviews.default: Service ghost.default does not exist\n",
  );

  const got = { 200: 0, 500: 0 };
  for (let i = 0; i < 200; i++) {
    const r = await viaProxy(p.port, "http://reviews/split", { agent });
    got[r.status as 200 | 500]++;
  }
  // 1:1 weights: both shares are served, neither is dropped in favour of the valid backend.
  assert.ok(got[200] > 60 && got[500] > 60, `1:1 split gave ${JSON.stringify(got)}`);
  assert.equal(got[200] + got[500], 200);

  const empty = await viaProxy(p.port, "http://empty/", { agent });
  assert.equal(empty.status, 503);
  assert.equal(empty.headers["x-weft-error"], "upstream_unavailable");
  const text = p.metrics.render();
  assert.equal(
    metricValue(text, "weft_local_replies_total", { direction: "outbound", code: "invalid_backend" }),
    got[500] + 1,
  );
});

test("backendRefs[].filters change only the requests sent to that backend, after the route's filters", async (t) => {
  const v1 = await startApp("v1");
  const v2 = await startApp("v2");
  const route = (w1: number, w2: number) =>
    buildSnapshot({
      clusters: [
        cluster("v1.default", "v1", [{ port: v1.port }]),
        cluster("v2.default", "v2", [{ port: v2.port }]),
      ],
      services: [
        {
          name: "reviews",
          routes: [
            {
              name: "default/reviews/0",
              matches: [],
              filters: {
                requestHeaders: { set: [{ name: "x-route", value: "r" }] },
                responseHeaders: {
                  set: [
                    { name: "x-answer", value: "route" },
                    { name: "x-keep", value: "1" },
                  ],
                },
              },
              backends: [
                {
                  cluster: "v1.default",
                  weight: w1,
                  filters: {
                    requestHeaders: { set: [{ name: "x-route", value: "v1" }], remove: ["x-debug"] },
                    responseHeaders: { set: [{ name: "x-answer", value: "v1" }] },
                  },
                },
                { cluster: "v2.default", weight: w2 },
              ],
            },
          ],
        },
      ],
    });
  const p = await startOutbound(route(1, 0));
  t.after(() => Promise.all([p.close(), v1.close(), v2.close()]));

  const a = await viaProxy(p.port, "http://reviews/", { headers: { "x-debug": "1" } });
  assert.equal(a.body, "v1 GET /");
  assert.equal(v1.seen[0].headers["x-route"], "v1", "the backend's set wins over the route's");
  assert.equal(v1.seen[0].headers["x-debug"], undefined);
  assert.equal(a.headers["x-answer"], "v1");
  assert.equal(a.headers["x-keep"], "1", "the route's own response filter still applies");

  p.config.set(route(0, 1));
  const b = await viaProxy(p.port, "http://reviews/", { headers: { "x-debug": "1" } });
  assert.equal(b.body, "v2 GET /");
  assert.equal(v2.seen[0].headers["x-route"], "r");
  assert.equal(v2.seen[0].headers["x-debug"], "1");
  assert.equal(b.headers["x-answer"], "route");
});

test("a rule with no backendRefs (or none with weight) answers 500 invalid_backend, gRPC calls UNAVAILABLE; a redirect rule needs none", async (t) => {
  const v1 = await startApp("v1");
  const snap = buildSnapshot({
    clusters: [cluster("reviews.default", "reviews", [{ port: v1.port }])],
    services: [
      {
        name: "reviews",
        routes: [
          {
            name: "default/reviews/none",
            matches: [{ path: { type: "PathPrefix", value: "/none" } }],
            backends: [],
          },
          {
            name: "default/reviews/zero",
            matches: [{ path: { type: "PathPrefix", value: "/zero" } }],
            backends: [{ cluster: "reviews.default", weight: 0 }],
          },
          {
            name: "default/reviews/moved",
            matches: [{ path: { type: "PathPrefix", value: "/moved" } }],
            backends: [],
            filters: { redirect: { hostname: "moved.example", statusCode: 302 } },
          },
          {
            name: "default/reviews/rest",
            matches: [],
            backends: [{ cluster: "reviews.default", weight: 1 }],
          },
        ],
      },
    ],
  });
  assert.deepEqual(snapshotViolations(snap).violations, []);
  const p = await startOutbound(snap);
  t.after(() => Promise.all([p.close(), v1.close()]));

  const none = await viaProxy(p.port, "http://reviews/none");
  assert.equal(none.status, 500);
  assert.equal(none.headers["x-weft-error"], "invalid_backend");
  assert.equal(
    none.body,
    "invalid_backend: route default/reviews/none of reviews.default has no backendRefs with weight > 0\n",
  );
  assert.equal(v1.seen.length, 0, "nothing was forwarded, not even to the parent Service");
  const zero = await viaProxy(p.port, "http://reviews/zero");
  assert.equal(zero.status, 500);
  assert.equal(zero.headers["x-weft-error"], "invalid_backend");
  const moved = await viaProxy(p.port, "http://reviews/moved/x");
  assert.equal(moved.status, 302);
  assert.equal(moved.headers.location, "http://moved.example/moved/x");
  assert.equal((await viaProxy(p.port, "http://reviews/other")).status, 200);
  assert.equal(v1.seen.length, 1);

  // A gRPC call (h2c to the outbound listener) to a rule without backends: UNAVAILABLE, as the
  // Gateway API requires of GRPCRoute, with weft's reason.
  const session = http2.connect(`http://127.0.0.1:${p.port}`);
  t.after(() => session.close());
  const call = session.request({
    ":method": "POST",
    ":path": "/none/shop.v1.Catalog/Get",
    ":authority": "reviews",
    "content-type": "application/grpc",
    te: "trailers",
  });
  call.end();
  call.resume();
  const [head] = (await once(call, "response")) as [http2.IncomingHttpHeaders];
  assert.equal(head[":status"], 200);
  assert.equal(head["grpc-status"], "14");
  assert.match(String(head["grpc-message"]), /^invalid_backend: route default\/reviews\/none /);
});
