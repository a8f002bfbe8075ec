// The admin port against what a web page on the user's machine can send: a cross-site "simple" POST
// to /drain (CSRF), and reads under a rebound DNS name. Real sockets; curl plays the browser where
// the request must be byte-for-byte what a browser would send.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Cell } from "../agent/cell.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { createTestCa, sid } from "../testing/certs.ts";
import { request } from "../testing/client.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import type { TlsMaterial } from "../types.ts";
import { createAdminServer } from "./server.ts";

const run = promisify(execFile);
const TOKEN = "a-random-admin-token-for-tests";

async function startAdmin(t: TestContext) {
  const ca = await createTestCa();
  const config = new Cell<ProxySnapshot>();
  const tls = new Cell<TlsMaterial>();
  tls.set(await ca.material(sid("web")));
  config.set(buildSnapshot({ version: "v1" }));
  const state = { drained: 0 };
  const admin = createAdminServer({
    token: TOKEN,
    metrics: new ProxyMetrics(),
    config,
    tls,
    isReady: () => state.drained === 0,
    onDrain: async () => {
      state.drained++;
    },
    clusters: () => [],
  });
  const { port } = await admin.listen(0);
  t.after(() => Promise.all([admin.close(), ca.cleanup()]));
  return { port, state };
}

/** curl's status and headers for one request, body discarded. */
async function curl(args: string[]): Promise<{ status: number; head: string }> {
  const { stdout } = await run("curl", ["-s", "-o", "/dev/null", "-D", "-", ...args]);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(stdout)?.[1]), head: stdout };
}

test("CSRF: a cross-site simple POST /drain (text/plain, no credential) is refused and drains nothing", async (t) => {
  const { port, state } = await startAdmin(t);
  const url = `http://127.0.0.1:${port}/drain`;
  // What a page on https://evil.example sends with fetch(url, {method: "POST", mode: "no-cors", body}).
  const browser = [
    "-X",
    "POST",
    "-H",
    "Content-Type: text/plain;charset=UTF-8",
    "-H",
    "Origin: https://evil.example",
    "-H",
    "Sec-Fetch-Site: cross-site",
    "-H",
    "Sec-Fetch-Mode: no-cors",
    "--data-binary",
    "drain",
    url,
  ];
  const r = await curl(browser);
  assert.equal(r.status, 403);
  assert.doesNotMatch(r.head, /access-control-allow/i);
  // A client that sends no Origin at all (not a browser, or an old one) still needs the token.
  const plain = await curl(["-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", "x", url]);
  assert.equal(plain.status, 401);
  assert.match(plain.head, /www-authenticate: Bearer realm="weft-admin"/i);
  // A same-site page on another local port is another origin too.
  const local = await request(port, {
    method: "POST",
    path: "/drain",
    headers: { origin: "http://localhost:3000", authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(local.status, 403);
  // The preflight a non-simple request would need gets no CORS grant.
  const pre = await curl([
    "-X",
    "OPTIONS",
    "-H",
    "Origin: https://evil.example",
    "-H",
    "Access-Control-Request-Method: POST",
    url,
  ]);
  assert.notEqual(pre.status, 204);
  assert.doesNotMatch(pre.head, /access-control-allow/i);

  assert.equal(state.drained, 0);
  assert.equal((await request(port, { path: "/ready" })).status, 200);
});

test("the admin token: missing or wrong is 401, the right one drains", async (t) => {
  const { port, state } = await startAdmin(t);
  const drain = (headers: Record<string, string>) =>
    request(port, { method: "POST", path: "/drain", headers });
  for (const authorization of [
    `Bearer ${TOKEN}x`,
    `Bearer ${TOKEN.slice(0, -1)}`,
    `Basic ${TOKEN}`,
    TOKEN,
    "Bearer ",
  ]) {
    const r = await drain({ authorization });
    assert.equal(r.status, 401, authorization);
    assert.doesNotMatch(r.body, new RegExp(TOKEN), "the token is never echoed");
  }
  assert.match((await drain({ authorization: "Bearer nope" })).body, /wrong admin token/);
  assert.equal(state.drained, 0);
  assert.equal((await request(port, { path: "/ready" })).status, 200);

  // What the docs tell users to run.
  const r = await run("curl", [
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "-X",
    "POST",
    "-H",
    `Authorization: Bearer ${TOKEN}`,
    `http://localhost:${port}/drain`,
  ]);
  assert.equal(r.stdout, "202");
  assert.equal(state.drained, 1);
});

test("DNS rebinding: every route answers only to its own Host; Prometheus' Host (the bound address) works", async (t) => {
  const { port } = await startAdmin(t);
  for (const path of ["/config", "/clusters", "/certs", "/metrics", "/ready"]) {
    for (const host of [
      "evil.example",
      `evil.example:${port}`,
      `127.0.0.1.evil.example:${port}`,
      `127.0.0.1:${port + 1}`,
    ]) {
      const r = await request(port, { path, headers: { host } });
      assert.equal(r.status, 421, `${path} with Host ${host}`);
      assert.doesNotMatch(r.body, /spiffe|version|weft_/, "nothing of the state leaks");
    }
    for (const host of [
      `127.0.0.1:${port}`,
      "127.0.0.1",
      `localhost:${port}`,
      `LOCALHOST:${port}`,
      `[::1]:${port}`,
    ]) {
      const r = await request(port, { path, headers: { host } });
      assert.equal(r.status, 200, `${path} with Host ${host}`);
    }
  }
  // A rebound page's own origin is refused even if it somehow sent a loopback Host.
  const r = await request(port, { path: "/config", headers: { origin: "http://evil.example" } });
  assert.equal(r.status, 403);
  // Tools that say where a request came from (Sec-Fetch-Site: none, same-origin) are fine.
  for (const site of ["none", "same-origin"]) {
    assert.equal((await request(port, { path: "/config", headers: { "sec-fetch-site": site } })).status, 200);
  }
  assert.equal(
    (await request(port, { path: "/config", headers: { "sec-fetch-site": "same-site" } })).status,
    403,
  );
});
