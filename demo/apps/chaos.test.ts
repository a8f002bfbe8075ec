// The chaos switch (lib.ts) in-process: a real HTTP server running an app handler behind
// withChaos(), driven by POST /chaos as `weft demo chaos` drives it.

import assert from "node:assert/strict";
import { Agent, createServer, request, type Server } from "node:http";
import { after, before, test } from "node:test";
import { Chaos, ChaosError, describeChaos, parseChaos, sendJson, withChaos } from "./lib.ts";

let server: Server;
let port: number;
let served = 0;
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

function call(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: any; ms: number; headers: Record<string, unknown> }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, agent, headers }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () =>
        resolve({
          status: res.statusCode!,
          json: JSON.parse(text),
          ms: performance.now() - started,
          headers: res.headers,
        }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

before(async () => {
  const handler = withChaos(
    "reviews v3",
    (_req, res) => {
      served++;
      sendJson(res, 200, { ok: true });
    },
    new Chaos(),
    () => {},
  );
  server = createServer((req, res) => void handler(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});

after(() => {
  agent.destroy();
  server.close();
});

test("with no chaos every request is served, and GET /chaos says it is off", async () => {
  const before = served;
  for (let i = 0; i < 20; i++) assert.equal((await call("GET", "/reviews/1")).status, 200);
  assert.equal(served - before, 20);
  const r = await call("GET", "/chaos");
  assert.deepEqual(r.json, { chaos: { fail: 0, status: 503, delay: 0 }, description: "off" });
});

test("fail=0.3&status=503 fails about 30% of requests with 503, without calling the app", async () => {
  const set = await call("POST", "/chaos?fail=0.3&status=503");
  assert.equal(set.status, 200);
  assert.equal(set.json.description, "fails 30% of requests with 503");
  const n = 400;
  const before = served;
  const codes = await Promise.all(Array.from({ length: n }, () => call("GET", "/reviews/1")));
  const failed = codes.filter((r) => r.status === 503);
  assert.equal(failed.length + codes.filter((r) => r.status === 200).length, n, "only 200s and 503s");
  // Binomial(400, 0.3): mean 120, sd ~9.2; 80..160 is more than 4 sd either side.
  assert.ok(failed.length >= 80 && failed.length <= 160, `${failed.length} of ${n} failed`);
  assert.equal(served - before, n - failed.length, "a failed request never reaches the app");
  assert.equal(failed[0].headers["x-demo-chaos"], "fail");
  assert.match(failed[0].json.error, /reviews v3 failed this request on purpose/);
});

test("fail=1&status=500 fails everything with 500; settings may come as a JSON or form body", async () => {
  let r = await call("POST", "/chaos", JSON.stringify({ fail: 1, status: 500 }), {
    "content-type": "application/json",
  });
  assert.equal(r.json.description, "fails every request with 500");
  for (let i = 0; i < 10; i++) assert.equal((await call("GET", "/reviews/1")).status, 500);
  r = await call("POST", "/chaos", "fail=50%&status=429");
  assert.deepEqual(r.json.chaos, { fail: 0.5, status: 429, delay: 0 });
});

test("delay=150 holds every request about 150 ms; each POST replaces the previous settings", async () => {
  const r = await call("POST", "/chaos?delay=150");
  assert.deepEqual(r.json.chaos, { fail: 0, status: 503, delay: 150 }, "fail from the last call is gone");
  const timed = await Promise.all(Array.from({ length: 5 }, () => call("GET", "/reviews/1")));
  for (const t of timed) {
    assert.equal(t.status, 200);
    assert.ok(t.ms >= 140, `took ${t.ms.toFixed(0)} ms`);
  }
  // The switch itself is never delayed.
  assert.ok((await call("GET", "/chaos")).ms < 140);
});

test("reset clears everything", async () => {
  await call("POST", "/chaos?fail=1&status=503&delay=100");
  const r = await call("POST", "/chaos?reset");
  assert.equal(r.json.description, "off");
  const t = await call("GET", "/reviews/1");
  assert.equal(t.status, 200);
  assert.ok(t.ms < 100, `took ${t.ms.toFixed(0)} ms`);
});

test("a bad setting is a 400 that says what would work, and changes nothing", async () => {
  await call("POST", "/chaos?fail=0.2");
  for (const [query, message] of [
    ["fial=0.3", /unknown chaos setting "fial"/],
    ["fail=1.5", /fail must be a fraction from 0 to 1/],
    ["fail=0.3&status=200", /status must be an HTTP error status/],
    ["status=500", /needs fail=/],
    ["delay=-5", /delay must be milliseconds/],
    ["reset&fail=1", /reset takes no other settings/],
    ["", /nothing to set/],
  ] as const) {
    const r = await call("POST", `/chaos?${query}`);
    assert.equal(r.status, 400, query);
    assert.match(r.json.error, message);
  }
  assert.equal((await call("GET", "/chaos")).json.chaos.fail, 0.2);
  await call("POST", "/chaos?reset");
});

test("parseChaos and Chaos.before, without a server", async () => {
  assert.deepEqual(parseChaos(new URLSearchParams("fail=30%&delay=1s")), {
    fail: 0.3,
    status: 503,
    delayMs: 1000,
  });
  assert.throws(() => parseChaos(new URLSearchParams("delay=fast")), ChaosError);
  assert.equal(
    describeChaos({ fail: 0.25, status: 502, delayMs: 20 }),
    "fails 25% of requests with 502, delays every request by 20 ms",
  );
  // Decisions follow the random source: below `fail` fails.
  const values = [0.1, 0.5, 0.29, 0.3];
  const chaos = new Chaos(() => values.shift()!);
  chaos.settings = { fail: 0.3, status: 504, delayMs: 0 };
  assert.deepEqual(
    [await chaos.before(), await chaos.before(), await chaos.before(), await chaos.before()],
    [504, undefined, 504, undefined],
  );
});
