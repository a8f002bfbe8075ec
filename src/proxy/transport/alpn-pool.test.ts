// ALPN between sidecars with real mesh certificates: h2 when the peer picks it (one connection for
// many concurrent requests), HTTP/1.1 when the peer offers only that, the SPIFFE identity check kept.

import { test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import https from "node:https";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { createTestCa, sid } from "../testing/certs.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { AlpnPool } from "./alpn-pool.ts";
import { UpstreamPools } from "./upstream-pools.ts";
import type { UpstreamDispatcher, UpstreamRequest } from "./upstream.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());
const WEB = sid("web");
const REVIEWS = sid("reviews");
const client = await ca.material(WEB);
const server = await ca.material(REVIEWS);

function fixed<T>(v: T): Source<T> {
  return { current: () => v, subscribe: () => () => {} };
}

function serverOptions(m: TlsMaterial) {
  return {
    key: m.keyPem,
    cert: m.certChainPem,
    ca: m.trustBundlePem,
    requestCert: true,
    rejectUnauthorized: true,
  };
}

/** Records each TLS connection's negotiated protocol and the client's certificate SAN. */
function record(s: https.Server | http2.Http2SecureServer) {
  const conns: { alpn: string | false | null; peer: string | undefined }[] = [];
  s.on("secureConnection", (sock: TLSSocket) =>
    conns.push({ alpn: sock.alpnProtocol, peer: sock.getPeerCertificate().subjectaltname }),
  );
  return conns;
}

function req(): UpstreamRequest {
  return {
    method: "GET",
    path: "/x",
    headers: ["host", "reviews"],
    body: null,
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
  };
}

function run(
  d: UpstreamDispatcher,
): Promise<{ status?: number; body: string; error?: Error & { code?: string } }> {
  return new Promise((resolve) => {
    let status: number | undefined;
    let body = "";
    d.dispatch(req(), {
      onConnect: () => {},
      onHeaders: (s) => ((status = s), true),
      onData: (c) => ((body += c.toString()), true),
      onComplete: () => resolve({ status, body }),
      onError: (error) => resolve({ body, error }),
    });
  });
}

function pools(t: { after(fn: () => unknown): void }) {
  const p = new UpstreamPools({ tls: fixed(client), metrics: new ProxyMetrics(), direction: "outbound" });
  t.after(() => p.destroy());
  return p;
}

test("a peer that picks h2: concurrent requests share one mTLS connection as h2 streams", async (t) => {
  const h2 = http2.createSecureServer({ ...serverOptions(server), allowHTTP1: true });
  const conns = record(h2);
  h2.on("stream", (stream, headers) => {
    stream.respond({ ":status": 200 });
    stream.end(`h2 ${headers[":authority"]}${headers[":path"]}`);
  });
  h2.listen(0, "127.0.0.1");
  await once(h2, "listening");
  t.after(() => h2.close());
  const port = (h2.address() as AddressInfo).port;
  const pool = pools(t).get({ address: "127.0.0.1", port, identity: REVIEWS });
  const results = await Promise.all(Array.from({ length: 30 }, () => run(pool.dispatcher)));
  for (const r of results) assert.deepEqual(r, { status: 200, body: "h2 reviews/x" });
  assert.equal((pool.dispatcher as AlpnPool).protocol, "h2");
  assert.equal(conns.length, 1, "one TLS connection for 30 concurrent requests");
  assert.equal(conns[0].alpn, "h2");
  assert.equal(conns[0].peer, `URI:${WEB}`, "our workload certificate was presented");
});

test("a peer that offers only http/1.1 still works, over the HTTP/1.1 pool", async (t) => {
  const h1 = https.createServer({ ...serverOptions(server), ALPNProtocols: ["http/1.1"] }, (q, res) => {
    res.end(`h1 ${q.headers.host}${q.url}`);
  });
  const conns = record(h1);
  h1.listen(0, "127.0.0.1");
  await once(h1, "listening");
  t.after(() => {
    h1.closeAllConnections();
    h1.close();
  });
  const port = (h1.address() as AddressInfo).port;
  const pool = pools(t).get({ address: "127.0.0.1", port, identity: REVIEWS });
  assert.deepEqual(await run(pool.dispatcher), { status: 200, body: "h1 reviews/x" });
  assert.deepEqual(await run(pool.dispatcher), { status: 200, body: "h1 reviews/x" });
  assert.equal((pool.dispatcher as AlpnPool).protocol, "http/1.1");
  assert.equal(conns.length, 1, "the negotiating connection is reused by the HTTP/1.1 pool");
  assert.equal(conns[0].alpn, "http/1.1");
});

test("the peer's SPIFFE identity is still checked on the negotiating connection", async (t) => {
  const h2 = http2.createSecureServer(serverOptions(server));
  h2.on("stream", (stream) => stream.respond({ ":status": 200 }, { endStream: true }));
  h2.listen(0, "127.0.0.1");
  await once(h2, "listening");
  t.after(() => h2.close());
  const port = (h2.address() as AddressInfo).port;
  const pool = pools(t).get({ address: "127.0.0.1", port, identity: sid("ratings") });
  const r = await run(pool.dispatcher);
  assert.equal(r.error?.code, "WEFT_ERR_UPSTREAM_IDENTITY");
  assert.equal(
    (pool.dispatcher as AlpnPool).protocol,
    undefined,
    "nothing chosen: the next request negotiates again",
  );
});
