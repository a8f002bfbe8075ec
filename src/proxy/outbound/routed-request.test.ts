// The retry/hedge/timeout engine in-process, over real sockets, with an injected clock: the test
// decides when each timer fires and sees the delay every timer was armed with.

import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { test, type TestContext } from "node:test";
import type { ClusterPolicy, Route, RetryPolicy } from "../../model/snapshot.ts";
import { startApp } from "../testing/apps.ts";
import { viaProxy } from "../testing/client.ts";
import { metricValue, startOutbound } from "../testing/harness.ts";
import { buildSnapshot, cluster } from "../testing/snapshots.ts";
import type { RouteClock } from "./route-context.ts";

/** A clock whose timers run only when the test says so. */
class ManualClock implements RouteClock {
  timers: { fn: () => void; ms: number; done: boolean }[] = [];
  randomValue = 0.5;
  setTimeout(fn: () => void, ms: number): unknown {
    const t = { fn, ms, done: false };
    this.timers.push(t);
    return t;
  }
  clearTimeout(t: unknown): void {
    if (t) (t as { done: boolean }).done = true;
  }
  random(): number {
    return this.randomValue;
  }
  pending(): { fn: () => void; ms: number; done: boolean }[] {
    return this.timers.filter((t) => !t.done);
  }
  /** Fires the oldest pending timer; returns the delay it was armed with. */
  fire(): number {
    const t = this.pending()[0];
    assert.ok(t, "a timer is pending");
    t.done = true;
    t.fn();
    return t.ms;
  }
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const retry = (p: Partial<RetryPolicy> = {}): RetryPolicy => ({
  attempts: 3,
  on: ["connect-failure", "reset", "gateway-error"],
  codes: [],
  backoff: { baseMs: 100, maxMs: 1000 },
  nonIdempotent: false,
  maxBufferedBodyBytes: 65536,
  ...p,
});

function routeOver(c: string, extra: Partial<Route>): Route {
  return { name: "default/r/0", matches: [], backends: [{ cluster: c, weight: 1 }], ...extra };
}

/** An outbound listener on a manual clock whose service "api" has one route over `ports`. */
async function proxyOver(
  t: TestContext,
  ports: number[],
  route: Partial<Route>,
  policy?: ClusterPolicy,
): Promise<{ p: Awaited<ReturnType<typeof startOutbound>>; clock: ManualClock }> {
  const clock = new ManualClock();
  const c = cluster(
    "api.default",
    "api",
    ports.map((port) => ({ port })),
  );
  const p = await startOutbound(
    buildSnapshot({
      services: [{ name: "api", routes: [routeOver("api.default", route)] }],
      clusters: [policy ? { ...c, policy } : c],
    }),
    { clock },
  );
  t.after(() => p.close());
  return { p, clock };
}

test("retries wait an exponentially growing, jittered backoff between attempts, then answer", async (t) => {
  let calls = 0;
  const app = await startApp("flaky", (_req, res) => {
    calls++;
    res.writeHead(calls <= 3 ? 503 : 200).end(`call ${calls}`);
  });
  t.after(() => app.close());
  const { p, clock } = await proxyOver(t, [app.port], { retry: retry() });

  const answer = viaProxy(p.port, "http://api/x");
  const delays: number[] = [];
  for (let i = 1; i <= 3; i++) {
    await until(() => calls === i && clock.pending().length === 1);
    delays.push(clock.fire());
  }
  const r = await answer;
  assert.equal(r.status, 200);
  assert.equal(r.body, "call 4");
  // Full jitter with random() = 0.5: half of 100, 200, 400.
  assert.deepEqual(delays, [50, 100, 200]);
  const m = p.metrics.render();
  assert.equal(metricValue(m, "weft_retries_total", { reason: "gateway-error" }), 3);
});

test("attempts run out: the last upstream response is what the client gets", async (t) => {
  let calls = 0;
  const app = await startApp("down", (_req, res) => {
    calls++;
    res.writeHead(503).end("still down");
  });
  t.after(() => app.close());
  const { p, clock } = await proxyOver(t, [app.port], { retry: retry({ attempts: 2 }) });
  const answer = viaProxy(p.port, "http://api/x");
  for (let i = 1; i <= 2; i++) {
    await until(() => calls === i && clock.pending().length === 1);
    clock.fire();
  }
  const r = await answer;
  assert.equal(calls, 3);
  assert.equal(r.status, 503);
  assert.equal(r.body, "still down");
});

test("a request body is replayed on each attempt", async (t) => {
  const bodies: string[] = [];
  const app = await startApp("echo", (_req, res, body) => {
    bodies.push(body.toString());
    res.writeHead(bodies.length === 1 ? 502 : 200).end("ok");
  });
  t.after(() => app.close());
  const { p, clock } = await proxyOver(t, [app.port], { retry: retry() });
  clock.randomValue = 0;
  const answer = viaProxy(p.port, "http://api/put", { method: "PUT", body: "payload-123" });
  await until(() => bodies.length === 1 && clock.pending().length === 1);
  clock.fire();
  const r = await answer;
  assert.equal(r.status, 200);
  assert.deepEqual(bodies, ["payload-123", "payload-123"]);
});

test("a hedge goes out after the hedge delay and the first answer wins", async (t) => {
  const slow = await startApp("slow", (_req, res) => {
    setTimeout(() => res.writeHead(200).end("slow"), 2000).unref();
  });
  const fast = await startApp("fast", (_req, res) => res.writeHead(200).end("fast"));
  t.after(() => Promise.all([slow.close(), fast.close()]));
  const { p, clock } = await proxyOver(
    t,
    [slow.port, fast.port],
    { retry: retry({ attempts: 1 }), hedge: { delayMs: 40, maxHedges: 1 } },
    { loadBalancer: { type: "RoundRobin" } },
  );
  // Whichever endpoint the first attempt takes, firing the hedge timer sends one to the other.
  const answer = viaProxy(p.port, "http://api/h");
  await until(() => slow.seen.length + fast.seen.length === 1);
  const first = slow.seen.length + fast.seen.length;
  assert.equal(first, 1);
  if (fast.seen.length === 1) {
    assert.equal((await answer).body, "fast");
    return; // first attempt went to the fast one: no hedge needed (timer is cleared)
  }
  assert.equal(clock.fire(), 40);
  const r = await answer;
  assert.equal(r.body, "fast");
  assert.equal(metricValue(p.metrics.render(), "weft_hedges_total", { outcome: "won" }), 1);
});

test("POST is not retried unless the rule allows non-idempotent retries", async (t) => {
  let calls = 0;
  const app = await startApp("down", (_req, res) => {
    calls++;
    res.writeHead(503).end("no");
  });
  t.after(() => app.close());
  const { p, clock } = await proxyOver(t, [app.port], { retry: retry() });
  const r = await viaProxy(p.port, "http://api/p", { method: "POST", body: "x" });
  assert.equal(r.status, 503);
  assert.equal(calls, 1);
  assert.equal(clock.pending().length, 0);
});

test("a body larger than the replay buffer is streamed whole once and not retried", async (t) => {
  const sizes: number[] = [];
  const app = await startApp("big", (_req, res, body) => {
    sizes.push(body.length);
    res.writeHead(503).end("busy");
  });
  t.after(() => app.close());
  const { p, clock } = await proxyOver(t, [app.port], { retry: retry({ maxBufferedBodyBytes: 1024 }) });
  const body = Buffer.alloc(100_000, 7);
  const r = await viaProxy(p.port, "http://api/big", { method: "PUT", body });
  assert.equal(r.status, 503);
  assert.deepEqual(sizes, [100_000], "the whole body reached the app, once");
  assert.equal(clock.pending().length, 0, "no retry was scheduled");
});

test("max concurrent retries: a retry that would exceed connectionPool.maxRetries is not sent", async (t) => {
  let calls = 0;
  const app = await startApp("down", (_req, res) => {
    calls++;
    res.writeHead(503).end("down");
  });
  t.after(() => app.close());
  const { p, clock } = await proxyOver(
    t,
    [app.port],
    { retry: retry({ attempts: 1 }) },
    {
      circuitBreaker: { maxRetries: 1 },
    },
  );
  // Two requests fail at once; the first gets its retry slot, the second finds it taken.
  const a = viaProxy(p.port, "http://api/a");
  const b = viaProxy(p.port, "http://api/b");
  await until(() => calls === 2 && clock.pending().length === 1);
  // The one that was refused answered with the upstream's 503 straight away.
  const first = await Promise.race([a, b]);
  assert.equal(first.status, 503);
  assert.equal(metricValue(p.metrics.render(), "weft_retry_budget_exhausted_total"), 1);
  clock.fire();
  await Promise.all([a, b]);
  assert.equal(calls, 3);
});

// --- streaming bodies on a route with retries (replay-source.ts) ---

/** An app that sees request bodies as they arrive: each request's chunks so far, and `answer` to end it. */
async function startStreamingApp(
  t: TestContext,
  answer: (call: number, res: http.ServerResponse, got: () => string) => void,
): Promise<{ port: number; bodies: string[] }> {
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    const call = bodies.push("") - 1;
    req.on("data", (c: Buffer) => (bodies[call] += String(c)));
    answer(call, res, () => bodies[call]);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, bodies };
}

test("a streaming body on a route with retries reaches the app as it arrives, not at its end", async (t) => {
  const app = await startStreamingApp(t, (_call, res, got) => {
    res.req.on("end", () => res.writeHead(200).end(`got ${got()}`));
  });
  const { p } = await proxyOver(t, [app.port], { retry: retry() });
  const body = new PassThrough();
  const answer = viaProxy(p.port, "http://api/stream", { method: "POST", body });
  body.write("first,");
  // The client waits for the app to see its first chunk before it sends the rest (as a gRPC
  // client or bidi stream does): a proxy that read the whole body first would stall here.
  await until(() => app.bodies[0] === "first,");
  body.end("second");
  const r = await answer;
  assert.equal(r.status, 200);
  assert.equal(r.body, "got first,second");
});

test("a streamed request whose first attempt fails before the body ended is retried with all of it", async (t) => {
  const app = await startStreamingApp(t, (call, res, got) => {
    if (call === 0) {
      // Answers as soon as the first chunk is in, while the client is still sending.
      res.req.once("data", () => res.writeHead(503).end("busy"));
      return;
    }
    res.req.on("end", () => res.writeHead(200).end(`got ${got()}`));
  });
  const { p, clock } = await proxyOver(t, [app.port], { retry: retry() });
  const body = new PassThrough();
  const answer = viaProxy(p.port, "http://api/stream", { method: "PUT", body });
  body.write("one,");
  await until(() => clock.pending().length === 1); // the 503 came back: a retry is scheduled
  clock.fire();
  // The retry replays what was kept, then follows the live body.
  await until(() => app.bodies[1] === "one,");
  body.end("two");
  const r = await answer;
  assert.equal(r.status, 200);
  assert.equal(r.body, "got one,two");
  assert.equal(metricValue(p.metrics.render(), "weft_retries_total", { reason: "gateway-error" }), 1);
});

test("a body that outgrows the buffer while a retry waits in backoff ends the request with a 503", async (t) => {
  const app = await startStreamingApp(t, (_call, res) => {
    res.req.once("data", () => res.writeHead(503).end("busy"));
  });
  const { p, clock } = await proxyOver(t, [app.port], { retry: retry({ maxBufferedBodyBytes: 8 }) });
  const body = new PassThrough();
  const answer = viaProxy(p.port, "http://api/stream", { method: "PUT", body });
  body.write("one,");
  await until(() => clock.pending().length === 1);
  body.end("and much more than eight bytes");
  const r = await answer;
  assert.equal(r.status, 503);
  assert.equal(r.headers["x-weft-error"], "upstream_unavailable");
  assert.match(r.body, /outgrew the retry buffer \(maxBufferedBodyBytes 8\)/);
  assert.equal(clock.pending().length, 0, "the retry was cancelled");
  assert.equal(app.bodies.length, 1, "no retry was sent");
});

/** An outbound listener whose route over `apiPort` mirrors every request to `shadowPort`. */
async function proxyWithMirror(
  t: TestContext,
  apiPort: number,
  shadowPort: number,
  maxBufferedBodyBytes: number,
): Promise<Awaited<ReturnType<typeof startOutbound>>> {
  const p = await startOutbound(
    buildSnapshot({
      services: [
        {
          name: "api",
          routes: [
            routeOver("api.default", {
              mirrors: [{ cluster: "shadow.default", percent: 100 }],
              retry: retry({ maxBufferedBodyBytes }),
            }),
          ],
        },
      ],
      clusters: [
        cluster("api.default", "api", [{ port: apiPort }]),
        cluster("shadow.default", "shadow", [{ port: shadowPort }]),
      ],
    }),
    { clock: new ManualClock() },
  );
  t.after(() => p.close());
  return p;
}

test("a mirror follows a streaming body as it arrives, like the real request", async (t) => {
  const echo = (_call: number, res: http.ServerResponse, got: () => string) =>
    res.req.on("end", () => res.writeHead(200).end(`got ${got()}`));
  const api = await startStreamingApp(t, echo);
  const shadow = await startStreamingApp(t, echo);
  const p = await proxyWithMirror(t, api.port, shadow.port, 65536);
  const body = new PassThrough();
  const answer = viaProxy(p.port, "http://api/m", { method: "POST", body });
  body.write("first,");
  await until(() => api.bodies[0] === "first," && shadow.bodies[0] === "first,");
  body.end("second");
  const r = await answer;
  assert.equal(r.body, "got first,second");
  await until(
    () => metricValue(p.metrics.render(), "weft_mirrored_requests_total", { outcome: "2xx" }) === 1,
  );
  assert.equal(shadow.bodies[0], "first,second");
});

test("a mirror of a body larger than the buffer is cut off and counted; the real request is whole", async (t) => {
  const echo = (_call: number, res: http.ServerResponse, got: () => string) =>
    res.req.on("end", () => res.writeHead(200).end(`${got().length}`));
  const api = await startStreamingApp(t, echo);
  const shadow = await startStreamingApp(t, echo);
  const p = await proxyWithMirror(t, api.port, shadow.port, 1024);
  const r = await viaProxy(p.port, "http://api/m", { method: "POST", body: Buffer.alloc(100_000, 1) });
  assert.equal(r.body, "100000");
  await until(
    () =>
      metricValue(p.metrics.render(), "weft_mirrored_requests_total", {
        outcome: "skipped_body_too_large",
      }) === 1,
  );
});
