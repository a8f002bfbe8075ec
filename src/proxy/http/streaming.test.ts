// Bodies stream through the proxy both ways with backpressure, and aborts travel in both directions.
// Exercised through the outbound listener (the inbound one shares the same Exchange).

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { Readable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { startApp } from "../testing/apps.ts";
import { startOutbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";

function proxyRequest(port: number, path: string, opts: http.RequestOptions = {}): http.ClientRequest {
  return http.request({
    host: "127.0.0.1",
    port,
    path: `http://app${path}`,
    headers: { host: "app" },
    agent: false,
    ...opts,
  });
}

async function setup(
  t: test.TestContext,
  stream: (req: http.IncomingMessage, res: http.ServerResponse) => void,
) {
  const app = await startApp("app", undefined, { stream });
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "app", endpoints: [{ port: app.port }] }] }),
  );
  t.after(() => Promise.all([p.close(), app.close()]));
  return { app, p };
}

/** Deterministic pseudo-random bytes, generated lazily (never held whole in memory). */
function generated(total: number, chunk = 64 * 1024): Readable {
  let sent = 0;
  let seed = 1;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(chunk, total - sent);
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i += 4) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        b.writeUInt32LE(seed, i);
      }
      sent += n;
      this.push(b);
    },
  });
}

test("the upstream receives the first request chunk before the client has sent the last (no buffering)", async (t) => {
  let firstChunkAtApp!: () => void;
  const appGotFirst = new Promise<void>((r) => (firstChunkAtApp = r));
  const { p } = await setup(t, (req, res) => {
    const chunks: string[] = [];
    req.on("data", (c: Buffer) => {
      chunks.push(c.toString());
      firstChunkAtApp();
    });
    req.on("end", () => res.end(`got ${chunks.join("")} te=${req.headers["transfer-encoding"]}`));
  });
  const req = proxyRequest(p.port, "/upload", { method: "POST" });
  const response = once(req, "response") as Promise<[http.IncomingMessage]>;
  req.write("first,");
  await appGotFirst; // would hang if the proxy waited for the whole body
  req.end("last");
  const [res] = await response;
  let body = "";
  for await (const c of res) body += c;
  assert.equal(body, "got first,last te=chunked");
});

test("the client receives the first response chunk before the app has written the last", async (t) => {
  let finish!: () => void;
  const canFinish = new Promise<void>((r) => (finish = r));
  const { p } = await setup(t, (req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("first,");
    void canFinish.then(() => res.end("last"));
  });
  const req = proxyRequest(p.port, "/download");
  req.end();
  const [res] = (await once(req, "response")) as [http.IncomingMessage];
  assert.equal(res.headers["transfer-encoding"], "chunked");
  const [first] = (await once(res, "data")) as [Buffer];
  assert.equal(first.toString(), "first,");
  finish();
  let rest = "";
  for await (const c of res) rest += c;
  assert.equal(rest, "last");
});

test("100 MB up and 100 MB down round-trip intact, with flat memory", async (t) => {
  const SIZE = 100 * 1024 * 1024;
  const { p } = await setup(t, (req, res) => {
    const h = createHash("sha256");
    let n = 0;
    req.on("data", (c: Buffer) => {
      h.update(c);
      n += c.length;
    });
    req.on("end", () => {
      res.writeHead(200, {
        "x-upload-sha256": h.digest("hex"),
        "x-upload-bytes": String(n),
        "content-length": String(SIZE),
      });
      generated(SIZE).pipe(res);
    });
  });
  const expected = createHash("sha256");
  for await (const c of generated(SIZE)) expected.update(c as Buffer);
  const expectedHex = expected.digest("hex");

  // Live memory (heap + Buffers) after a full GC, sampled during the transfer: what the client, the
  // proxy and the app hold at once. Buffering either body whole would hold ≥ 100 MB.
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const live = () => {
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  const liveBefore = live();
  let livePeak = liveBefore;
  const sampler = setInterval(() => (livePeak = Math.max(livePeak, live())), 50);
  t.after(() => clearInterval(sampler));

  const req = proxyRequest(p.port, "/big", {
    method: "PUT",
    headers: { host: "app", "content-length": String(SIZE) },
  });
  generated(SIZE).pipe(req);
  const [res] = (await once(req, "response")) as [http.IncomingMessage];
  assert.equal(res.headers["x-upload-bytes"], String(SIZE));
  assert.equal(res.headers["x-upload-sha256"], expectedHex);
  const down = createHash("sha256");
  let n = 0;
  for await (const c of res) {
    down.update(c as Buffer);
    n += (c as Buffer).length;
  }
  clearInterval(sampler);
  assert.equal(n, SIZE);
  assert.equal(down.digest("hex"), expectedHex);
  const grewMb = (livePeak - liveBefore) / 1024 / 1024;
  assert.ok(grewMb < 60, `live memory grew ${grewMb.toFixed(1)} MB while moving 200 MB`);
});

test("a client that goes away mid-response aborts the upstream request", async (t) => {
  let appResClosed!: (finished: boolean) => void;
  const appSawClose = new Promise<boolean>((r) => (appResClosed = r));
  const { p } = await setup(t, (req, res) => {
    req.resume();
    res.writeHead(200);
    res.write("x".repeat(1024));
    res.on("close", () => appResClosed(res.writableFinished));
    // never ends on its own
  });
  const req = proxyRequest(p.port, "/forever");
  req.end();
  const [res] = (await once(req, "response")) as [http.IncomingMessage];
  await once(res, "data");
  req.destroy();
  assert.equal(await appSawClose, false, "the app's response closed before it finished");
  const text = p.metrics.render();
  assert.match(text, /weft_requests_total\{[^}]*response_code="0"[^}]*\} 1/);
});

test("a client that goes away mid-upload aborts the upstream request", async (t) => {
  let appReqOutcome!: (how: string) => void;
  const outcome = new Promise<string>((r) => (appReqOutcome = r));
  let appGotData!: () => void;
  const receiving = new Promise<void>((r) => (appGotData = r));
  const { p } = await setup(t, (req) => {
    req.on("data", () => appGotData());
    req.on("end", () => appReqOutcome("end"));
    req.on("aborted", () => appReqOutcome("aborted"));
    req.on("error", () => appReqOutcome("error"));
    req.on("close", () => appReqOutcome(req.complete ? "end" : "close"));
  });
  const req = proxyRequest(p.port, "/upload", {
    method: "POST",
    headers: { host: "app", "content-length": "1000000" },
  });
  req.on("error", () => {});
  req.write(Buffer.alloc(64 * 1024));
  await receiving;
  req.destroy();
  assert.notEqual(await outcome, "end");
});

test("an upstream reset mid-response aborts the client response instead of ending it cleanly", async (t) => {
  const { p } = await setup(t, (req, res) => {
    req.resume();
    const chunked = req.url === "/chunked";
    res.writeHead(200, chunked ? {} : { "content-length": "100000" });
    res.write("partial", () => res.socket?.destroy());
  });
  for (const path of ["/sized", "/chunked"]) {
    const req = proxyRequest(p.port, path);
    req.end();
    const [res] = (await once(req, "response")) as [http.IncomingMessage];
    const outcome = await new Promise<string>((resolve) => {
      res.on("data", () => {});
      res.on("end", () => resolve("clean end"));
      res.on("error", (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
      res.on("aborted", () => resolve("aborted"));
    });
    assert.notEqual(outcome, "clean end", path);
  }
});

test("Expect: 100-continue is answered by the proxy and the body still flows", async (t) => {
  const { p } = await setup(t, (req, res) => {
    let n = 0;
    req.on("data", (c: Buffer) => (n += c.length));
    req.on("end", () => res.end(`got ${n} expect=${req.headers.expect}`));
  });
  const req = proxyRequest(p.port, "/e", {
    method: "POST",
    headers: { host: "app", "content-length": "5", expect: "100-continue" },
  });
  req.on("continue", () => req.end("hello"));
  const [res] = (await once(req, "response")) as [http.IncomingMessage];
  let body = "";
  for await (const c of res) body += c;
  assert.equal(body, "got 5 expect=undefined");
});
