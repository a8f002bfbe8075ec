// Request events through a real outbound listener: the boundaries fire in order for a plain route
// and for a route whose first attempt is retried; metrics stay a subscriber like any other; hooks
// nobody subscribed to are absent (the zero-cost case).

import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import type { Route } from "../../model/snapshot.ts";
import { startApp } from "../testing/apps.ts";
import { viaProxy } from "../testing/client.ts";
import { metricValue, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";
import { RequestEvents, type RequestObserver } from "./events.ts";

function recorder(): { log: string[]; observer: RequestObserver } {
  const log: string[] = [];
  return {
    log,
    observer: {
      onStart: (x) => log.push(`start ${x.method} ${x.target}`),
      onRoute: (_x, route) => log.push(`route ${route}`),
      onAttemptStart: (_x, ep) => log.push(`attempt ${ep.replace(/:\d+$/, "")}`),
      onAttemptEnd: (_x, _ep, outcome) => log.push(`attempt end ${outcome}`),
      onEnd: (_x, status, failure) => log.push(`end ${status}${failure ? ` ${failure}` : ""}`),
    },
  };
}

async function proxyWith(t: TestContext, ports: number[], route: Partial<Route>, observer: RequestObserver) {
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
      clusters: [c],
    }),
    { observers: [observer] },
  );
  t.after(() => p.close());
  return p;
}

test("a plain request: start, route, one attempt, end — and the metrics subscriber still counts it", async (t) => {
  const app = await startApp("api");
  t.after(() => app.close());
  const { log, observer } = recorder();
  const p = await proxyWith(t, [app.port], {}, observer);
  const r = await viaProxy(p.port, "http://api/x?y=1");
  assert.equal(r.status, 200);
  assert.deepEqual(log, [
    "start GET /x?y=1",
    "route default/r/0",
    "attempt api.default at 127.0.0.1",
    "attempt end success",
    "end 200",
  ]);
  assert.equal(
    metricValue(p.metrics.render(), "weft_requests_total", {
      destination_service: "api.default",
      response_code: "200",
    }),
    1,
  );
});

test("a retried request: each attempt is an event with its outcome; a local reply ends with its code", async (t) => {
  let calls = 0;
  const app = await startApp("api", (_req, res) => {
    res.statusCode = calls++ === 0 ? 503 : 200;
    res.end();
  });
  t.after(() => app.close());
  const { log, observer } = recorder();
  const p = await proxyWith(
    t,
    [app.port],
    {
      retry: {
        attempts: 2,
        on: ["gateway-error"],
        codes: [],
        backoff: { baseMs: 1, maxMs: 1 },
        nonIdempotent: false,
        maxBufferedBodyBytes: 1024,
      },
    },
    observer,
  );
  assert.equal((await viaProxy(p.port, "http://api/r")).status, 200);
  assert.deepEqual(log, [
    "start GET /r",
    "route default/r/0",
    "attempt api.default at 127.0.0.1",
    "attempt end gateway",
    "attempt api.default at 127.0.0.1",
    "attempt end success",
    "end 200",
  ]);
  log.length = 0;
  assert.equal((await viaProxy(p.port, "http://nowhere/")).status, 404);
  assert.deepEqual(log, ["start GET /", "end 404 no_route"]);
});

test("hooks nobody subscribed to are undefined; several subscribers are folded into one call", () => {
  const none = new RequestEvents([{ onEnd: () => {} }]);
  assert.equal(none.start, undefined);
  assert.equal(none.route, undefined);
  assert.equal(none.attemptStart, undefined);
  assert.equal(none.attemptEnd, undefined);
  assert.equal(typeof none.end, "function");
  const seen: string[] = [];
  const two = new RequestEvents([
    { onRoute: (_x, r) => seen.push(`a ${r}`) },
    { onRoute: (_x, r) => seen.push(`b ${r}`) },
  ]);
  two.route!(undefined as never, "r");
  assert.deepEqual(seen, ["a r", "b r"]);
});
