// Apps speaking h2c (prior knowledge) to the outbound listener, on the same port as HTTP/1.1:
// curl and h2load as clients, through a real sidecar pair (h2 over mTLS between the sidecars).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http from "node:http";
import http2 from "node:http2";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { startApp } from "../testing/apps.ts";
import { createTestCa } from "../testing/certs.ts";
import { viaProxy } from "../testing/client.ts";
import { metricValue } from "../testing/harness.ts";
import { startSidecarPair } from "../testing/sidecar-pair.ts";

const run = promisify(execFile);
const ca = await createTestCa();
test.after(() => ca.cleanup());

const pair = (t: { after(fn: () => unknown): void }, appPort: number) => startSidecarPair(t, ca, appPort);

test("curl --http2-prior-knowledge reaches an HTTP/1.1 app through the pair; HTTP/1.1 clients share the port", async (t) => {
  const app = await startApp("reviews");
  t.after(() => app.close());
  const { outbound } = await pair(t, app.port);
  const { stdout } = await run("curl", [
    "-sS",
    "--http2-prior-knowledge",
    "-H",
    "Host: reviews:9080",
    "-w",
    "\\n%{http_version} %{response_code}",
    `http://127.0.0.1:${outbound.port}/from-curl?x=1`,
  ]);
  assert.equal(stdout, "reviews GET /from-curl?x=1\n2 200");
  assert.equal(app.seen[0].headers.host, "reviews:9080");
  const h1 = await viaProxy(outbound.port, "http://reviews:9080/from-h1");
  assert.equal(h1.body, "reviews GET /from-h1");
});

test("h2load: 400 requests, 20 streams at a time, over one client connection and one sidecar connection", async (t) => {
  const app = await startApp("reviews");
  t.after(() => app.close());
  const { outbound, inbound } = await pair(t, app.port);
  const { stdout } = await run("h2load", [
    "-n400",
    "-c1",
    "-m20",
    "-H",
    ":authority: reviews:9080",
    `http://127.0.0.1:${outbound.port}/load`,
  ]);
  assert.match(stdout, /400 succeeded, 0 failed, 0 errored/);
  assert.match(stdout, /status codes: 400 2xx/);
  const out = outbound.metrics.render();
  assert.equal(metricValue(out, "weft_downstream_connections_total", { direction: "outbound" }), 1);
  assert.equal(
    metricValue(out, "weft_upstream_connections_total", { direction: "outbound", tls: "true" }),
    1,
  );
  assert.equal(
    metricValue(inbound.metrics.render(), "weft_downstream_connections_total", { direction: "inbound" }),
    1,
  );
});

test("h2load: 3000 requests, 5 connections × 10 streams: every response complete", async (t) => {
  const app = await startApp("reviews");
  t.after(() => app.close());
  const { outbound } = await pair(t, app.port);
  const { stdout } = await run("h2load", [
    "-n3000",
    "-c5",
    "-m10",
    "-H",
    ":authority: reviews:9080",
    `http://127.0.0.1:${outbound.port}/load`,
  ]);
  assert.match(stdout, /3000 succeeded, 0 failed, 0 errored/);
});

test("gRPC-style trailers cross the pair end to end to an h2c client (te: trailers kept)", async (t) => {
  const app = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "application/grpc", trailer: "grpc-status" });
    res.write(Buffer.from([0, 0, 0, 0, 1, 42]));
    res.addTrailers({ "grpc-status": "0", "grpc-message": "ok", "x-te-seen": String(req.headers.te) });
    res.end();
  });
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  t.after(() => app.close());
  const { outbound } = await pair(t, (app.address() as AddressInfo).port);
  const session = http2.connect(`http://127.0.0.1:${outbound.port}`);
  t.after(() => session.close());
  const s = session.request({
    ":method": "POST",
    ":path": "/pkg.Svc/Call",
    ":authority": "reviews:9080",
    "content-type": "application/grpc",
    te: "trailers",
  });
  s.end(Buffer.from([0, 0, 0, 0, 0]));
  const [head] = (await once(s, "response")) as [http2.IncomingHttpHeaders];
  const chunks: Buffer[] = [];
  s.on("data", (c: Buffer) => chunks.push(c));
  const [trailers] = (await once(s, "trailers")) as [http2.IncomingHttpHeaders];
  assert.equal(head[":status"], 200);
  assert.deepEqual(Buffer.concat(chunks), Buffer.from([0, 0, 0, 0, 1, 42]));
  assert.equal(trailers["grpc-status"], "0");
  assert.equal(trailers["grpc-message"], "ok");
  assert.equal(trailers["x-te-seen"], "trailers", "the app saw TE: trailers");
});

test("h2load at 5 connections × 100 streams to an h2c app through the pair: every body whole (content-length kept)", async (t) => {
  // The bench's HTTP/2 case in small: the body loss it once saw (HEADERS with content-length: 100,
  // no DATA, counted as failed) needs a saturated host to happen, which this does not reproduce on
  // its own; h2-stream.test.ts makes its cause happen every time. This guards the whole path.
  const body = Buffer.alloc(100, "w");
  let h2Requests = 0;
  const app = http2.createServer({ settings: { maxConcurrentStreams: 1000 } }, (req, res) => {
    if (req.httpVersionMajor === 2) h2Requests++;
    req.resume();
    res.writeHead(200, { "content-type": "text/plain", "content-length": String(body.length) }).end(body);
  });
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  t.after(() => app.close());
  const { outbound } = await startSidecarPair(t, ca, (app.address() as AddressInfo).port, "http2");
  const { stdout } = await run("h2load", [
    "-n5000",
    "-c5",
    "-m100",
    "-H",
    ":authority: reviews:9080",
    `http://127.0.0.1:${outbound.port}/load`,
  ]);
  assert.match(stdout, /5000 succeeded, 0 failed, 0 errored/);
  assert.match(stdout, /traffic: .*\(500000\) data/);
  assert.equal(h2Requests, 5000, "the app leg is h2c");
});
