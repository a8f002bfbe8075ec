// The benchmark's HTTP/2 and gRPC pieces against the real tools: the h2c upstream answers both
// HTTP/2 with prior knowledge and HTTP/1.1 on one port (and says which), h2load's framed gRPC request
// is a valid unary call (the grpc-js upstream counts every call it answered OK, so a malformed frame
// answered with HTTP 200 and a non-zero grpc-status would show as missing calls), and h2load's summary
// is read with its failures. The bench itself (`npm run bench`) is not part of the suite.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { APP_PROTOCOL_HEADER } from "../../bench/h2-upstream.ts";
import { framedRequest, GRPC_PATH, GRPC_REPLY } from "../../bench/grpc-upstream.ts";
import { UPSTREAM_BODY } from "../../bench/upstream.ts";
import { startGrpcApp, startH2App } from "../../bench/lib/h2-cases.ts";
import { grpcUnary, h2Get } from "../../bench/lib/h2-check.ts";
import { parseH2loadSummary, runH2Closed } from "../../bench/lib/h2load.ts";
import { httpGet } from "../../bench/lib/http-check.ts";

const noH2load = spawnSync("h2load", ["--version"]).error
  ? "h2load is not installed (Debian nghttp2-client)"
  : false;
const noTaskset = spawnSync("taskset", ["--version"]).error ? "taskset is not installed" : false;

test(
  "the h2 upstream answers h2c and HTTP/1.1 on one port, naming the protocol",
  { skip: noTaskset },
  async (t) => {
    const app = await startH2App(0);
    t.after(() => app.child.stop());
    const url = `http://127.0.0.1:${app.port}/`;
    const h2 = await h2Get(url);
    assert.equal(h2.status, 200);
    assert.deepEqual(h2.body, UPSTREAM_BODY);
    assert.equal(h2.headers[APP_PROTOCOL_HEADER], "2.0");
    const h1 = await httpGet(url);
    assert.equal(h1.status, 200);
    assert.equal(h1.body, UPSTREAM_BODY.toString("utf8"));
  },
);

test(
  "h2load's framed gRPC requests are unary calls the app answers OK, every one",
  { skip: noH2load || noTaskset },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "weft-bench-grpc-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const app = await startGrpcApp(0);
    t.after(() => app.child.stop());
    assert.deepEqual(await grpcUnary(`127.0.0.1:${app.port}`, undefined, Buffer.from("hi")), GRPC_REPLY);
    const before = await app.calls();
    assert.equal(before, 1);

    const dataFile = join(dir, "req.bin");
    writeFileSync(dataFile, framedRequest(Buffer.from("a request message")));
    const url = `http://127.0.0.1:${app.port}${GRPC_PATH}`;
    const r = await runH2Closed(
      { url, h2: { dataFile, headers: ["content-type: application/grpc", "te: trailers"] } },
      2,
      4,
      1,
      0,
    );
    assert.ok(r.requests > 0, "h2load completed requests");
    assert.equal(r.non2xx, 0);
    assert.equal(r.socketErrors, 0);
    assert.ok((await app.calls()) - before >= r.requests, "every 2xx h2load counted was a call answered OK");
  },
);

test(
  "the gRPC upstream does not count calls it did not answer OK",
  { skip: noH2load || noTaskset },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "weft-bench-grpc-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const app = await startGrpcApp(0);
    t.after(() => app.child.stop());
    // A frame whose prefix announces more bytes than follow: grpc-js answers 200 with a non-zero grpc-status.
    const bad = framedRequest(Buffer.from("x".repeat(16))).subarray(0, 10);
    const dataFile = join(dir, "bad.bin");
    writeFileSync(dataFile, bad);
    const r = await runH2Closed(
      {
        url: `http://127.0.0.1:${app.port}${GRPC_PATH}`,
        h2: { dataFile, headers: ["content-type: application/grpc"] },
      },
      1,
      1,
      1,
      0,
    );
    assert.ok(r.requests > 0 && r.non2xx === 0, "h2load sees only 2xx");
    assert.equal(await app.calls(), 0, "yet no call was answered OK");
  },
);

test("h2load's summary: throughput from the succeeded requests, non-2xx and failures counted", () => {
  const r = parseH2loadSummary(
    [
      "finished in 2.01s, 1743.50 req/s, 232.49KB/s",
      "requests: 3533 total, 3583 started, 3533 done, 3487 succeeded, 46 failed, 46 errored, 0 timeout",
      "status codes: 3520 2xx, 1 3xx, 2 4xx, 10 5xx",
    ].join("\n"),
  );
  assert.equal(r.requests, 3487);
  assert.equal(r.seconds, 2.01);
  assert.equal(Math.round(r.rps), 1735);
  assert.equal(r.non2xx, 13);
  assert.equal(r.socketErrors, 46);
  assert.throws(() => parseH2loadSummary("garbage"), /h2load: unexpected output/);
});
