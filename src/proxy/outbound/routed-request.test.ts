// The retry/hedge/timeout engine in-process, over real sockets, with an injected clock: the test
// decides when each timer fires and sees the delay every timer was armed with.

import assert from "node:assert/strict";
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
