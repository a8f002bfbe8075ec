// gRPC at the proxy itself, through an in-process sidecar pair (h2c from the client, h2 over mTLS
// between the sidecars, h2c to an app declared `grpc`), with a raw node:http2 client that — unlike
// grpc-js — enforces no deadline of its own: what it sees is what the proxy did.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createTestCa, sid } from "../testing/certs.ts";
import { metricValue, startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";

const ca = await createTestCa();
test.after(() => ca.cleanup());
const WEB = sid("web");
const CATALOG = sid("catalog");

interface Seen {
  grpcTimeout: string | undefined;
  cancelled: boolean;
  closed: Promise<unknown>;
}

/** An h2c app: "/hang" never answers; "/fail" answers trailers-only with `status` (and a hostile one for "/evil"). */
async function startApp(t: TestContext): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const s: Seen = {
      grpcTimeout: headers["grpc-timeout"] as string | undefined,
      cancelled: false,
      closed: once(stream, "close"),
    };
    seen.push(s);
    stream.on("close", () => (s.cancelled = stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR));
    stream.on("error", () => {});
    stream.resume();
    const path = headers[":path"];
    if (path === "/x.Svc/Fail")
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", "grpc-status": "14", "grpc-message": "down" },
        { endStream: true },
      );
    else if (path === "/x.Svc/Evil")
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", "grpc-status": "evil\u00e9label" },
        { endStream: true },
      );
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  t.after(() => {
    for (const session of sessions) session.destroy();
    return new Promise((r) => server.close(r));
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

async function pair(t: TestContext, appPort: number) {
  const inbound = await startInbound(
    buildSnapshot({
      appPort,
      inboundPorts: [{ port: 9090, appPort, protocol: "grpc" }],
      proxy: { service: "catalog", namespace: "default", identity: CATALOG },
    }),
    await ca.material(CATALOG),
  );
  const outbound = await startOutbound(
    buildSnapshot({
      services: [
        {
          name: "catalog",
          ports: [{ port: 9090, protocol: "grpc" }],
          endpoints: [{ port: inbound.port, identity: CATALOG }],
        },
      ],
    }),
    { tls: await ca.material(WEB) },
  );
  t.after(() => Promise.all([outbound.close(), inbound.close()]));
  return { inbound, outbound };
}

interface Answer {
  head: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader;
  /** The head carried END_STREAM (a trailers-only response). */
  trailersOnly: boolean;
  ms: number;
}

function call(
  t: TestContext,
  port: number,
  path: string,
  extra: Record<string, string> = {},
): Promise<Answer> {
  const client = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => client.destroy());
  const started = performance.now();
  const req = client.request({
    ":method": "POST",
    ":path": path,
    ":authority": "catalog:9090",
    "content-type": "application/grpc",
    te: "trailers",
    ...extra,
  });
  req.end(Buffer.from([0, 0, 0, 0, 0]));
  return new Promise((resolve, reject) => {
    req.on("response", (head, flags) =>
      resolve({ head, trailersOnly: (flags & 0x1) !== 0, ms: performance.now() - started }),
    );
    req.on("error", reject);
    // A guard, not a wait: a proxy that enforced nothing would leave this call hanging forever.
    const guard = setTimeout(() => reject(new Error("no answer within 5 s")), 5000);
    req.on("close", () => clearTimeout(guard));
  });
}

test("grpc-timeout is the deadline at the proxy: DEADLINE_EXCEEDED trailers-only, the app sees the time left and the cancellation", async (t) => {
  const app = await startApp(t);
  const { outbound } = await pair(t, app.port);
  const r = await call(t, outbound.port, "/x.Svc/Hang", { "grpc-timeout": "300m" });
  assert.equal(r.head[":status"], 200);
  assert.equal(r.head["grpc-status"], "4");
  assert.equal(r.head["x-weft-error"], "timeout");
  assert.match(String(r.head["grpc-message"]), /^timeout: .*grpc-timeout 300m/);
  assert.ok(r.trailersOnly, "one HEADERS frame that ends the stream");
  assert.ok(r.ms >= 250 && r.ms < 3000, `answered after ${r.ms} ms`);
  const got = app.seen[0]!.grpcTimeout!;
  assert.match(got, /^\d+m$/);
  assert.ok(Number(got.slice(0, -1)) <= 300, `the app was given ${got}`);
  await app.seen[0]!.closed;
  assert.ok(app.seen[0]!.cancelled, "the app's stream was reset, not left hanging");
});

test("a malformed grpc-timeout is passed on as it came and not enforced", async (t) => {
  const app = await startApp(t);
  const { outbound } = await pair(t, app.port);
  const r = await call(t, outbound.port, "/x.Svc/Fail", { "grpc-timeout": "soon" });
  assert.equal(r.head["grpc-status"], "14");
  assert.equal(app.seen[0]!.grpcTimeout, "soon");
});

test("a trailers-only answer stays trailers-only across both sidecars; grpc_status labels it, a hostile one as UNKNOWN", async (t) => {
  const app = await startApp(t);
  const { outbound, inbound } = await pair(t, app.port);
  const r = await call(t, outbound.port, "/x.Svc/Fail");
  assert.equal(r.head[":status"], 200);
  assert.equal(r.head["grpc-status"], "14");
  assert.equal(r.head["grpc-message"], "down");
  assert.ok(r.trailersOnly, "no empty trailer block after the head");
  const evil = await call(t, outbound.port, "/x.Svc/Evil");
  assert.ok(evil.trailersOnly);
  for (const [m, direction] of [
    [outbound.metrics, "outbound"],
    [inbound.metrics, "inbound"],
  ] as const) {
    const text = m.render();
    assert.equal(metricValue(text, "weft_requests_total", { direction, grpc_status: "14" }), 1, text);
    assert.equal(metricValue(text, "weft_requests_total", { direction, grpc_status: "2" }), 1, text);
    assert.doesNotMatch(text, /evil/);
  }
});
