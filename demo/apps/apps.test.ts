// The demo apps, without weft: a fake HTTP proxy stands in for the sidecar's outbound listener
// (absolute-form requests, service name in the URL), so the apps' own behaviour is tested alone.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, request, type Server } from "node:http";
import { after, before, test } from "node:test";
import { freePorts } from "../ports.ts";

const apps: Record<string, { port: number; args: string[]; proc?: ChildProcess }> = {};
const seen: { url: string; host: string; user?: string }[] = [];
let proxy: Server;
let proxyPort: number;

function get(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path, method: opts.method, headers: opts.headers }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(body) }));
    })
      .on("error", reject)
      .end();
  });
}

async function healthy(port: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    try {
      return (await get(port, "/healthz")).json.pid;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`app on ${port} never became healthy`);
}

before(async () => {
  const ports = await freePorts(5);
  proxyPort = ports[0];
  Object.assign(apps, {
    storefront: { port: ports[1], args: [] },
    catalog: { port: ports[2], args: [] },
    reviews: { port: ports[3], args: ["v2"] },
    ratings: { port: ports[4], args: [] },
  });
  // The fake sidecar: "http://reviews:9080/reviews/1" → 127.0.0.1:<reviews app port>/reviews/1.
  proxy = createServer((req, res) => {
    seen.push({
      url: req.url!,
      host: req.headers.host!,
      user: req.headers["x-demo-user"] as string | undefined,
    });
    const u = new URL(req.url!);
    const app = apps[u.hostname];
    if (!app) return res.writeHead(502).end();
    const up = request({ host: "127.0.0.1", port: app.port, path: u.pathname, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.writeHead(502).end());
    up.end();
  });
  await new Promise<void>((r) => proxy.listen(proxyPort, "127.0.0.1", r));
  for (const [name, app] of Object.entries(apps)) {
    app.proc = spawn(process.execPath, [new URL(`./${name}.ts`, import.meta.url).pathname, ...app.args], {
      env: {
        ...process.env,
        PORT: String(app.port),
        HTTP_PROXY: `http://127.0.0.1:${proxyPort}`,
        WEFT_DEMO_RATINGS_FAILURE: "0",
      },
      stdio: "ignore",
    });
  }
  for (const app of Object.values(apps)) await healthy(app.port);
});

after(() => {
  for (const app of Object.values(apps)) app.proc?.kill("SIGKILL");
  proxy.close();
});

test("storefront's page combines catalog and reviews v2 (which asks ratings), all through the proxy", async () => {
  const r = await get(apps.storefront.port, "/products/1");
  assert.equal(r.status, 200);
  assert.equal(r.json.product.title, "The Comedy of Errors");
  assert.equal(r.json.reviews.version, "v2");
  assert.deepEqual(r.json.reviews.stars, { color: "black", ratings: [5, 4] });
  const urls = seen.map((s) => s.url).sort();
  assert.deepEqual(urls, [
    "http://catalog/products/1",
    "http://ratings/ratings/1",
    "http://reviews:9080/reviews/1",
  ]);
  assert.ok(
    seen.every((s) => new URL(s.url).host === s.host),
    "Host names the service, as in the URL",
  );
});

test("every app answers /healthz with its pid; unknown paths are 404", async () => {
  for (const app of Object.values(apps)) {
    const h = await get(app.port, "/healthz");
    assert.equal(h.status, 200);
    assert.equal(h.json.pid, app.proc!.pid);
  }
  assert.equal((await get(apps.catalog.port, "/nope")).status, 404);
});

test("the storefront passes x-demo-user on, so routes on reviews can match the user", async () => {
  seen.length = 0;
  await get(apps.storefront.port, "/products/2", { headers: { "x-demo-user": "jason" } });
  const reviews = seen.find((s) => s.url.startsWith("http://reviews"));
  assert.equal(reviews?.user, "jason");
});

test("every app has the chaos switch; it never touches /healthz", async () => {
  const set = await get(apps.ratings.port, "/chaos?fail=1&status=500", { method: "POST" });
  assert.equal(set.json.description, "fails every request with 500");
  try {
    assert.equal((await get(apps.ratings.port, "/healthz")).status, 200);
    // reviews v2 degrades: its page has no stars, and says why.
    const page = await get(apps.storefront.port, "/products/1");
    assert.equal(page.status, 200);
    assert.deepEqual(page.json.reviews.stars, { error: "ratings answered 500" });
  } finally {
    await get(apps.ratings.port, "/chaos?reset", { method: "POST" });
  }
  const page = await get(apps.storefront.port, "/products/1");
  assert.deepEqual(page.json.reviews.stars, { color: "black", ratings: [5, 4] });
});

test("SIGTERM stops an app with exit code 0", async () => {
  const proc = apps.catalog.proc!;
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  proc.kill("SIGTERM");
  assert.equal(await exited, 0);
  // Without the catalog the storefront has no page, and says why.
  const r = await get(apps.storefront.port, "/");
  assert.equal(r.status, 502);
  assert.match(r.json.error, /^catalog: HTTP 502/);
});
