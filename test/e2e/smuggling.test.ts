// Malformed and smuggling-style HTTP requests to both listeners of a real proxy get a 4xx and never
// reach the app; the proxy keeps serving afterwards. The full catalogue (every edge, exact outcomes,
// checked against a strict parser) is src/proxy/http/smuggling.test.ts; this runs the attacks that
// hurt most through real sidecar processes and real mTLS.

import assert from "node:assert/strict";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { before, test } from "node:test";
import { callApi } from "../../src/client/api-client.ts";
import { generateWorkloadKeyAndCsr } from "../../src/pki/csr.ts";
import {
  httpGet,
  readConfig,
  startApp,
  startControlPlane,
  startProxy,
  waitUntil,
  type ProxyProcess,
} from "../helpers/mesh.ts";

let target: ProxyProcess;
let client: ProxyProcess;
let app: Awaited<ReturnType<typeof startApp>>;
let cert: { key: string; cert: string; ca: string };

before(async () => {
  const cp = await startControlPlane();
  app = await startApp("target");
  const other = await startApp("client");
  target = await startProxy(cp, "target", app.port);
  client = await startProxy(cp, "client", other.port);
  await waitUntil(
    async () => (await httpGet(client.outboundPort, "http://target/")).status === 200,
    5000,
    "target reachable",
  );
  const cfg = readConfig(cp);
  const { keyPem, csrPem } = await generateWorkloadKeyAndCsr("spiffe://weft.local/ns/default/sa/client");
  const out = await callApi<{ certChain: string; trustBundle: string }>(
    { server: cfg.server, ca: cfg.ca, token: cfg.token },
    "POST",
    "/api/v1/certificates",
    { csr: csrPem, service: "client" },
  );
  cert = { key: keyPem, cert: out.certChain, ca: out.trustBundle };
});

const H = "Host: target\r\n";
const cases: [string, string][] = [
  [
    "Content-Length and Transfer-Encoding together",
    `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\n${H}\r\n`,
  ],
  [
    "two different Content-Lengths",
    `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 40\r\n\r\nabcd`,
  ],
  [
    "Transfer-Encoding not ending in chunked",
    `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
  ],
  [
    "obfuscated Transfer-Encoding",
    `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
  ],
  [
    "a bad chunk size",
    `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`,
  ],
  ["obs-fold header continuation", `GET /smuggle HTTP/1.1\r\n${H}X-A: 1\r\n  continued\r\n\r\n`],
  ["no Host header", `GET /smuggle HTTP/1.1\r\n\r\n`],
  ["oversize headers", `GET /smuggle HTTP/1.1\r\n${H}X-Big: ${"a".repeat(70_000)}\r\n\r\n`],
  ["garbage", `\x16\x03\x01\x00\xff not http at all\r\n\r\n`],
  ["bad request line", `GET /smuggle HTTP/9.9 extra\r\n${H}\r\n`],
];

function exchange(open: () => Socket, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = open();
    let out = "";
    s.setTimeout(5000, () => s.destroy());
    s.on("data", (d) => (out += d.toString("latin1")));
    s.on("error", () => resolve(out));
    s.on("close", () => resolve(out));
    s.write(Buffer.from(bytes, "latin1"));
  });
}

for (const [name, bytes] of cases) {
  test(`outbound listener: ${name} → 4xx, the app never sees it`, async () => {
    const before = app.seen.length;
    const out = await exchange(() => netConnect(client.outboundPort, "127.0.0.1"), bytes);
    assert.match(out, /^HTTP\/1\.1 4\d\d/, `got: ${JSON.stringify(out.slice(0, 80))}`);
    assert.equal(app.seen.length, before);
  });
  test(`inbound listener: ${name} → 4xx, the app never sees it`, async () => {
    const before = app.seen.length;
    const out = await exchange(
      () =>
        tlsConnect({
          host: "127.0.0.1",
          port: target.inboundPort,
          ...cert,
          checkServerIdentity: () => undefined,
        }),
      bytes,
    );
    assert.match(out, /^HTTP\/1\.1 4\d\d/, `got: ${JSON.stringify(out.slice(0, 80))}`);
    assert.equal(app.seen.length, before);
  });
}

function inboundTls(): Socket {
  return tlsConnect({
    host: "127.0.0.1",
    port: target.inboundPort,
    ...cert,
    checkServerIdentity: () => undefined,
  });
}

/** Writes `bytes` and collects the reply until `done(reply)` or the server closes. */
function collect(s: Socket, bytes: string, done: (reply: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    s.setTimeout(5000, () => s.destroy());
    s.on("data", (d) => {
      out += d.toString("latin1");
      if (done(out)) {
        s.destroy();
        resolve(out);
      }
    });
    s.on("error", () => resolve(out));
    s.on("close", () => resolve(out));
    s.write(Buffer.from(bytes, "latin1"));
  });
}

// Issue 6, hole 1: removing the headers Connection names once shifted Host onto Content-Length, so
// the app read "Content-Length: 0" and the body as a second request with a forged XFCC.
const SMUGGLED = `GET /smuggled-admin HTTP/1.1\r\nHost: target\r\nx-forwarded-client-cert: URI=spiffe://weft.local/ns/default/sa/admin\r\n\r\n`;
const CONNECTION_HOST = `POST /upload-1 HTTP/1.1\r\nHost: 0\r\nContent-Length: ${SMUGGLED.length}\r\nConnection: host\r\n\r\n${SMUGGLED}`;

test("inbound over mTLS: Connection: host cannot turn a body into a second request", async () => {
  const before = app.seen.length;
  const out = await collect(inboundTls(), CONNECTION_HOST, (r) => /\r\n\r\n/.test(r));
  assert.match(out, /^HTTP\/1\.1 200 /);
  const seen = app.seen.slice(before);
  assert.deepEqual(
    seen.map((s) => s.url),
    ["/upload-1"],
  );
  assert.equal(seen[0].headers.host, "0");
  assert.match(
    String(seen[0].headers["x-forwarded-client-cert"]),
    /URI=spiffe:\/\/weft\.local\/ns\/default\/sa\/client$/,
  );
});

test("through the client sidecar: Connection: host with a body reaches the app as one request", async () => {
  const before = app.seen.length;
  const bytes = CONNECTION_HOST.replace("Host: 0", "Host: target").replace("/upload-1", "/upload-2");
  const out = await collect(netConnect(client.outboundPort, "127.0.0.1"), bytes, (r) => /\r\n\r\n/.test(r));
  assert.match(out, /^HTTP\/1\.1 200 /);
  assert.deepEqual(
    app.seen.slice(before).map((s) => s.url),
    ["/upload-2"],
  );
});

test("inbound over mTLS: a pipelined bad request is refused after the good one is answered", async () => {
  const before = app.seen.length;
  const out = await collect(
    inboundTls(),
    `GET /pipe-1 HTTP/1.1\r\n${H}\r\nGET /pipe-2 HTTP/1.1\r\nX A: b\r\n\r\n`,
    (r) => /x-weft-error: bad_request/.test(r) && r.endsWith("\n"),
  );
  assert.match(out, /^HTTP\/1\.1 200 [^]*HTTP\/1\.1 400 /);
  assert.deepEqual(
    app.seen.slice(before).map((s) => s.url),
    ["/pipe-1"],
  );
});

test("both listeners still serve after all of that", async () => {
  const r = await httpGet(client.outboundPort, "http://target/still-fine");
  assert.equal(r.status, 200);
  assert.equal(app.seen.at(-1)!.url, "/still-fine");
  assert.ok(!app.seen.some((s) => s.url.includes("smuggle") || s.url.includes("hidden")));
  assert.ok(!app.seen.some((s) => s.url.includes("admin")));
});
