// The HTTP/1.1 edge's exchange: the request record it reads (protocol-neutral fields the pipeline
// uses) and the Downstream's local-reply writer, HTTP-shaped by default and gRPC-shaped through the
// listener's seam. A real node:http edge on port 0, raw bytes in.

import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import test from "node:test";
import { ProxyMetrics, StatsByCode } from "../metrics/registry.ts";
import { rawRequest } from "../testing/raw.ts";
import { H1Exchange } from "./h1-exchange.ts";
import { LocalReplies, type GrpcReplyShape } from "./local-reply.ts";
import { HttpEdge } from "./server-edge.ts";

async function startEdge(t: test.TestContext, serve: (x: H1Exchange) => void, grpcShape?: GrpcReplyShape) {
  const metrics = new ProxyMetrics();
  const stats = new StatsByCode(metrics, "outbound", "unknown", "unknown", "");
  const edge: HttpEdge = new HttpEdge({
    replies: new LocalReplies(metrics, "outbound", grpcShape),
    handler: (req, res) => {
      const x = new H1Exchange(req, res, edge, stats);
      if (x.readRequest("no https here")) serve(x);
    },
  });
  edge.server.listen(0, "127.0.0.1");
  await new Promise((r) => edge.server.once("listening", r));
  t.after(() => {
    edge.closeAllConnections();
    edge.server.close();
  });
  return { port: (edge.server.address() as AddressInfo).port, metrics };
}

test("the record: method, absolute-form authority and origin-form target, end-to-end headers, gRPC flag", async (t) => {
  let seen: H1Exchange | undefined;
  const { port } = await startEdge(t, (x) => {
    seen = x;
    x.reply("no_route", "seen");
  });
  const r = await rawRequest(
    port,
    "POST http://svc.ns:8080/pkg.Svc/Call?x=1 HTTP/1.1\r\nHost: svc.ns:8080\r\nContent-Type: application/grpc+proto\r\n" +
      "X-Custom: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
  );
  assert.equal(r.status, 404);
  const x = seen!;
  assert.equal(x.method, "POST");
  assert.equal(x.scheme, "http");
  assert.equal(x.authority, "svc.ns:8080");
  assert.equal(x.target, "/pkg.Svc/Call?x=1");
  assert.equal(x.path, "/pkg.Svc/Call");
  assert.equal(x.queryParam("x"), "1");
  assert.equal(x.grpc, true);
  assert.equal(x.header("x-custom"), "a");
  assert.deepEqual(x.headers, ["Content-Type", "application/grpc+proto", "X-Custom", "a"]);
  assert.equal(x.contentLength, "2");
  assert.ok(x.body !== null, "a request with a body hands it over as a stream");
});

test("not gRPC: other content types, and a bodiless request has body null", async (t) => {
  let seen: H1Exchange | undefined;
  const { port } = await startEdge(t, (x) => {
    seen = x;
    x.reply("no_route", "seen");
  });
  await rawRequest(
    port,
    "GET / HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
  );
  assert.equal(seen!.grpc, false);
  assert.equal(seen!.body, null);
});

test("local replies are HTTP-shaped unless the listener has a gRPC shape and the request is gRPC", async (t) => {
  const grpcShape: GrpcReplyShape = (r) => [
    "content-type",
    "application/grpc",
    "grpc-status",
    "14",
    "grpc-message",
    `${r.code}: ${r.detail}`,
    "x-weft-error",
    r.code,
  ];
  const { port } = await startEdge(t, (x) => x.reply("upstream_unavailable", "no endpoints"), grpcShape);
  const grpc = await rawRequest(
    port,
    "POST /a.B/C HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
  );
  assert.equal(grpc.status, 200);
  assert.match(grpc.text, /grpc-status: 14\r\n/);
  assert.match(grpc.text, /grpc-message: upstream_unavailable: no endpoints\r\n/);
  assert.match(grpc.text, /x-weft-error: upstream_unavailable\r\n/);
  const plain = await rawRequest(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  assert.equal(plain.status, 503);
  assert.match(plain.text, /\r\n\r\nupstream_unavailable: no endpoints\n$/);

  const { port: noShape } = await startEdge(t, (x) => x.reply("upstream_unavailable", "no endpoints"));
  const unshaped = await rawRequest(
    noShape,
    "POST /a.B/C HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
  );
  assert.equal(unshaped.status, 503, "without a gRPC shape the reply stays HTTP-shaped (today's behaviour)");
});

test("extra reply headers (Retry-After) are sent with the local reply", async (t) => {
  const { port } = await startEdge(t, (x) =>
    x.reply("rate_limited", "slow down", false, undefined, ["retry-after", "2"]),
  );
  const r = await rawRequest(port, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  assert.equal(r.status, 429);
  assert.match(r.text, /retry-after: 2\r\n/i);
});
