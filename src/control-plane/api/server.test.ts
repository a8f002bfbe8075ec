// The config API against hostile callers, over real TLS sockets and raw HTTP/1.1 so that a test
// controls exactly when (and whether) a body is sent: the caller is checked before a body byte is
// read, bodies are capped per route and cut at a deadline, JSON nesting is limited while it
// arrives, body reads at once are bounded, and token requests are validated field by field.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect, type TLSSocket } from "node:tls";
import { generateWorkloadKeyAndCsr } from "../../pki/csr.ts";
import type { ApiDeps } from "./server.ts";
import { startTestApi, TEST_ADMIN_TOKEN } from "./testdata/test-api.ts";

const ADMIN = TEST_ADMIN_TOKEN;
const MiB = 1024 * 1024;

async function startApi(t: TestContext, extra: Partial<ApiDeps> = {}) {
  const api = await startTestApi(t, extra);
  return { port: api.port, ca: api.ca, joinToken: api.token("web") };
}

/** A raw HTTP/1.1 connection: write what you like, read everything until the server closes. */
class Raw {
  readonly socket: TLSSocket;
  received = "";
  readonly closed: Promise<string>;
  constructor(port: number, ca: string) {
    this.socket = connect({ host: "127.0.0.1", port, ca });
    this.socket.setEncoding("utf8");
    this.socket.on("data", (d: string) => (this.received += d));
    this.socket.on("error", () => {}); // a write after the server closed; what was read still counts
    this.closed = once(this.socket, "close").then(() => this.received);
  }
  async ready(): Promise<this> {
    await once(this.socket, "secureConnect");
    return this;
  }
  /** Resolves once a whole response head has arrived. */
  async head(): Promise<string> {
    while (!this.received.includes("\r\n\r\n")) {
      const [ended] = await Promise.race([once(this.socket, "data"), once(this.socket, "close")]);
      if (ended === false && !this.received.includes("\r\n\r\n")) break;
    }
    return this.received;
  }
}

function head(method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;
}

const status = (response: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
const body = (response: string) => JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4));

test("an unauthenticated 8 MiB certificate request is refused from its headers: 401, closed, body never read", async (t) => {
  const api = await startApi(t);
  const auths: Record<string, string>[] = [{}, { authorization: "Bearer not-a-token" }];
  for (const auth of auths) {
    const raw = await new Raw(api.port, api.ca).ready();
    raw.socket.write(
      head("POST", "/api/v1/certificates", {
        "content-type": "application/json",
        "content-length": 8 * MiB,
        ...auth,
      }),
    );
    // Not a byte of the body is sent: the answer must come from the headers alone, and the server
    // must hang up rather than wait for (or drain) the 8 MiB.
    const response = await raw.closed;
    assert.equal(status(response), 401, response);
    assert.match(response, /connection: close/i);
    assert.equal(body(response).error.code, "unauthenticated");
  }
  // With `Expect: 100-continue` (curl's habit for big bodies) the client is never told to go on.
  const raw = await new Raw(api.port, api.ca).ready();
  raw.socket.write(
    head("POST", "/api/v1/certificates", { "content-length": 8 * MiB, expect: "100-continue" }),
  );
  const response = await raw.closed;
  assert.doesNotMatch(response, /100 Continue/);
  assert.equal(status(response), 401);
});

test("an authenticated body over the route's cap is 413: declared length before reading, chunked at the cap", async (t) => {
  const api = await startApi(t);
  // Declared: the join token's holder asks to send 100 KiB of "CSR".
  let raw = await new Raw(api.port, api.ca).ready();
  raw.socket.write(
    head("POST", "/api/v1/certificates", {
      authorization: `Bearer ${api.joinToken}`,
      "content-type": "application/json",
      "content-length": 100 * 1024,
    }),
  );
  let response = await raw.closed;
  assert.equal(status(response), 413, response);
  assert.equal(body(response).error.limitBytes, 64 * 1024);

  // Chunked: no length up front; cut once the body passes 64 KiB.
  raw = await new Raw(api.port, api.ca).ready();
  raw.socket.write(
    head("POST", "/api/v1/certificates", {
      authorization: `Bearer ${api.joinToken}`,
      "content-type": "application/json",
      "transfer-encoding": "chunked",
    }),
  );
  const piece = `${(16 * 1024).toString(16)}\r\n${" ".repeat(16 * 1024)}\r\n`;
  for (let i = 0; i < 5; i++) raw.socket.write(piece); // 80 KiB, never finished
  response = await raw.closed;
  assert.equal(status(response), 413, response);

  // The admin's apply may be bigger (8 MiB) but not unbounded.
  raw = await new Raw(api.port, api.ca).ready();
  raw.socket.write(
    head("POST", "/api/v1/apply", { authorization: `Bearer ${ADMIN}`, "content-length": 9 * MiB }),
  );
  response = await raw.closed;
  assert.equal(status(response), 413, response);
});

test("deeply nested JSON is refused with 400 as it arrives, long before JSON.parse", async (t) => {
  const api = await startApi(t);
  const nested = `{"csr": ${"[".repeat(60_000)}`; // under the 64 KiB cap; never closed
  const raw = await new Raw(api.port, api.ca).ready();
  const started = performance.now();
  raw.socket.write(
    head("POST", "/api/v1/certificates", {
      authorization: `Bearer ${api.joinToken}`,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(nested) + 1, // one byte never comes: only the gauge can answer
    }) + nested,
  );
  const response = await raw.closed;
  const elapsed = performance.now() - started;
  assert.equal(status(response), 400, response);
  assert.match(body(response).error.message, /deeper than 32 levels \(at byte 39\)/);
  assert.ok(elapsed < 2000, `answered in ${elapsed} ms`);
});

test("a body that never finishes is cut at the deadline with 408", async (t) => {
  const api = await startApi(t, { bodyDeadlineMs: 150 });
  const raw = await new Raw(api.port, api.ca).ready();
  const started = performance.now();
  raw.socket.write(
    head("POST", "/api/v1/certificates", {
      authorization: `Bearer ${api.joinToken}`,
      "content-type": "application/json",
      "content-length": 1000,
    }) + `{"csr": "`,
  );
  const response = await raw.closed;
  const elapsed = performance.now() - started;
  assert.equal(status(response), 408, response);
  assert.match(body(response).error.message, /not received within 150 ms \(got 9 bytes\)/);
  assert.ok(elapsed >= 140 && elapsed < 5000, `cut after ${elapsed} ms`);
});

test("body reads at once are bounded: the next callers get 503 with a turn each to come back, then a slot frees", async (t) => {
  // Signing's pace (one per 10 s here) sets how far apart the turns of refused callers are.
  const api = await startApi(t, { maxConcurrentBodies: 2, signing: { ratePerSecond: 0.1, burst: 1 } });
  const stalled = [];
  for (let i = 0; i < 2; i++) {
    const raw = await new Raw(api.port, api.ca).ready();
    raw.socket.write(
      head("POST", "/api/v1/tokens", { authorization: `Bearer ${ADMIN}`, "content-length": 100 }) + "{",
    );
    stalled.push(raw);
  }
  // The two stalled bodies hold both slots (a request to a route without a body shows they arrived).
  const probe = await new Raw(api.port, api.ca).ready();
  probe.socket.write(head("GET", "/healthz", { connection: "close" }));
  await probe.closed;
  let raw = await new Raw(api.port, api.ca).ready();
  raw.socket.write(head("POST", "/api/v1/tokens", { authorization: `Bearer ${ADMIN}`, "content-length": 2 }));
  const response = await raw.closed;
  assert.equal(status(response), 503, response);
  assert.match(response, /retry-after: 1\r\n/i);
  // Each refused caller books a turn in the same schedule as signing's refusals: told about 10, 20,
  // 30 s (whole seconds, less the time the test took), not "1 s" all together.
  const told = [];
  for (let i = 0; i < 3; i++) {
    raw = await new Raw(api.port, api.ca).ready();
    raw.socket.write(
      head("POST", "/api/v1/tokens", { authorization: `Bearer ${ADMIN}`, "content-length": 2 }),
    );
    const refused = await raw.closed;
    assert.equal(status(refused), 503, refused);
    told.push(Number(/retry-after: (\d+)/i.exec(refused)?.[1]));
  }
  assert.ok(told[0] >= 8 && told[1] - told[0] >= 9 && told[2] - told[1] >= 9, `told ${told}`);

  stalled[0].socket.destroy();
  await stalled[0].closed;
  const ok = JSON.stringify({ service: "web" });
  for (let attempt = 0; ; attempt++) {
    raw = await new Raw(api.port, api.ca).ready();
    raw.socket.write(
      head("POST", "/api/v1/tokens", {
        authorization: `Bearer ${ADMIN}`,
        "content-length": ok.length,
        connection: "close",
      }) + ok,
    );
    const r = await raw.closed;
    if (status(r) === 200) break;
    assert.equal(status(r), 503);
    assert.ok(attempt < 50, "the slot of a closed connection is released");
  }
  stalled[1].socket.destroy();
});

test("token requests: bad service names, namespaces and lifetimes are 422 naming the field, never a stack", async (t) => {
  const api = await startApi(t);
  const post = async (payload: unknown) => {
    const text = JSON.stringify(payload);
    const raw = await new Raw(api.port, api.ca).ready();
    raw.socket.write(
      head("POST", "/api/v1/tokens", {
        authorization: `Bearer ${ADMIN}`,
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text),
        connection: "close",
      }) + text,
    );
    const response = await raw.closed;
    return { status: status(response), body: body(response) };
  };
  const cases: [unknown, string][] = [
    [{ service: "../../x" }, "service"],
    [{ service: "Web" }, "service"],
    [{ service: "a".repeat(64) }, "service"],
    [{ service: 7 }, "service"],
    [{}, "service"],
    [{ service: "web", namespace: "a/b" }, "namespace"],
    [{ service: "web", ttlSeconds: -1 }, "ttlSeconds"],
    [{ service: "web", ttlSeconds: 0 }, "ttlSeconds"],
    [{ service: "web", ttlSeconds: 1.5 }, "ttlSeconds"],
    [{ service: "web", ttlSeconds: 1e12 }, "ttlSeconds"],
    [{ service: "web", ttlSeconds: "3600" }, "ttlSeconds"],
    [{ service: "web", admin: true }, "admin"],
  ];
  for (const [payload, field] of cases) {
    const r = await post(payload);
    assert.equal(r.status, 422, JSON.stringify(payload));
    assert.equal(r.body.error.field, field, JSON.stringify(payload));
    assert.match(r.body.error.message, new RegExp(`field "${field}"`));
    assert.doesNotMatch(JSON.stringify(r.body), /\.ts:\d+|at [A-Za-z.]+ \(/, "no stack trace");
  }
  assert.equal((await post([1, 2])).status, 422);
  const good = await post({ service: "web", namespace: "shop", ttlSeconds: 3600 });
  assert.equal(good.status, 200);
  assert.equal(good.body.identity, "spiffe://weft.local/ns/shop/sa/web");
});

test("a join token still gets its certificate through the limits", async (t) => {
  const api = await startApi(t);
  const { csrPem } = await generateWorkloadKeyAndCsr("spiffe://weft.local/ns/default/sa/web");
  const text = JSON.stringify({ csr: csrPem });
  const raw = await new Raw(api.port, api.ca).ready();
  raw.socket.write(
    head("POST", "/api/v1/certificates", {
      authorization: `Bearer ${api.joinToken}`,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      expect: "100-continue",
      connection: "close",
    }),
  );
  assert.match(await raw.head(), /^HTTP\/1\.1 100 Continue/);
  raw.socket.write(text);
  const response = await raw.closed;
  assert.match(response, /HTTP\/1\.1 200 OK/);
  assert.equal(
    body(response.slice(response.indexOf("HTTP/1.1 200"))).identity,
    "spiffe://weft.local/ns/default/sa/web",
  );
});
