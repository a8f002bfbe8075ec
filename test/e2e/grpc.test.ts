// gRPC end to end with @grpc/grpc-js on both sides (a client and server nobody here wrote): unary,
// the three streaming kinds with 10k messages each way and back-pressure, deadlines and gRPC-shaped
// local replies. GRPCRoute (retries, streaming on retry routes, matches, splits, faults) is in
// grpc-routes.test.ts.
//
// Each scenario runs twice where that makes sense: DIRECT (client → server, no mesh) proves the test
// and its helpers right; MESH sends the same calls through a client sidecar's --upstream port and a
// server sidecar (../helpers/grpc-mesh.ts), started when the first of them runs.

import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { after, test, type TestContext } from "node:test";
import { grpcLocalReply } from "../../src/proxy/grpc/local-reply.ts";
import { metricSum } from "../helpers/control-app.ts";
import {
  collect,
  ECHO_SERVICE,
  echoClient,
  rawGrpcCall,
  startGrpcApp,
  startTrailersOnlyServer,
  unary,
  writeAll,
  type EchoClient,
  type EchoMessage,
  type GrpcApp,
  type WriterProgress,
} from "../helpers/grpc-apps.ts";
import { DEADLINE_MS, grpcMesh, metrics, pinned as pinnedTo } from "../helpers/grpc-mesh.ts";
import { waitUntil } from "../helpers/mesh.ts";

const MESSAGES = 10_000;
/** Back-pressure tests: 256 B per message, 10k of them ~2.5 MiB, far beyond every flow-control window on the way. */
const PAD = 256;
/** Plain streaming tests: small messages, so 10k each way stay quick on a shared CPU. */
const SMALL = 16;

// ---- shared scenarios: each takes a client and the app(s) it reaches --------------------------

async function checkUnary(client: EchoClient, apps: string[]): Promise<void> {
  const r = await unary(
    client,
    { text: "hello" },
    { metadata: { "x-request-tag": "t1" }, deadlineMs: DEADLINE_MS },
  );
  assert.equal(r.error, undefined, r.error?.message);
  assert.ok(apps.includes(r.value!.app!), r.value!.app);
  assert.equal(r.value!.text, "hello");
  assert.equal(r.value!.metadata!["x-request-tag"], "t1", "custom metadata reaches the app");
}

/**
 * Back-pressure is visible as a writer that stops: with the reader paused, the writer must end up
 * waiting for 'drain' long before it has written everything. A path that buffered without bound
 * would keep accepting until all 10 MiB were written. Stopping can only be seen as the absence of
 * progress, so this waits for the writer to block, then for 3 quiet 100 ms periods in a row.
 */
async function assertStalls(progress: WriterProgress, total: number): Promise<number> {
  await waitUntil(
    () => progress.waitingForDrain || progress.written >= total,
    DEADLINE_MS,
    "writer to block",
  );
  let quiet = 0;
  let last = progress.written;
  while (quiet < 3) {
    await new Promise((r) => setTimeout(r, 100));
    quiet = progress.written === last && progress.waitingForDrain ? quiet + 1 : 0;
    last = progress.written;
    assert.ok(
      last < total / 2,
      `writer got ${last} of ${total} messages out with the reader paused: no back-pressure`,
    );
  }
  return last;
}

/**
 * Server streaming, read by a hand-made client with real HTTP/2 flow control (grpc-js's client keeps
 * reading while paused; see rawGrpcCall): while it does not read, the grpc-js server must stall.
 */
async function checkServerStream(port: number, app: GrpcApp): Promise<void> {
  const call = rawGrpcCall(port, ECHO_SERVICE.ServerStream.path, { count: MESSAGES, size: PAD });
  const stalledAt = await assertStalls(app.writer, MESSAGES);
  const { messages, grpcStatus } = await call.messages();
  assert.equal(grpcStatus, "0");
  assert.equal(messages.length, MESSAGES);
  assert.ok(
    messages.every((m, i) => m.seq === i && m.pad?.length === PAD),
    "every message, in order, intact",
  );
  assert.ok(stalledAt < MESSAGES / 2);
}

/** grpc-js's own client reads a 10k-message server stream whole and in order. */
async function checkServerStreamRead(client: EchoClient): Promise<void> {
  const call = client.makeServerStreamRequest(
    ECHO_SERVICE.ServerStream.path,
    ECHO_SERVICE.ServerStream.requestSerialize,
    ECHO_SERVICE.ServerStream.responseDeserialize,
    { count: MESSAGES, size: SMALL },
    new grpc.Metadata(),
    { deadline: Date.now() + 3 * DEADLINE_MS },
  );
  const got = await collect(call);
  assert.equal(got.length, MESSAGES);
  assert.ok(
    got.every((m, i) => m.seq === i && m.pad?.length === SMALL),
    "every message, in order, intact",
  );
}

async function checkClientStream(client: EchoClient, app: GrpcApp): Promise<void> {
  app.pauseReading();
  const progress: WriterProgress = { written: 0, waitingForDrain: false };
  let call!: grpc.ClientWritableStream<EchoMessage>;
  const answer = new Promise<{ value?: EchoMessage; error?: grpc.ServiceError }>((resolve) => {
    call = client.makeClientStreamRequest(
      ECHO_SERVICE.ClientStream.path,
      ECHO_SERVICE.ClientStream.requestSerialize,
      ECHO_SERVICE.ClientStream.responseDeserialize,
      new grpc.Metadata(),
      { deadline: Date.now() + 3 * DEADLINE_MS },
      (error, value) => resolve({ error: error ?? undefined, value }),
    );
  });
  const writing = writeAll(call, MESSAGES, PAD, progress);
  await assertStalls(progress, MESSAGES);
  app.resumeReading();
  await writing;
  const r = await answer;
  assert.equal(r.error, undefined, r.error?.message);
  assert.deepEqual(r.value, { app: app.name, received: MESSAGES, bytes: MESSAGES * PAD });
}

async function checkBidi(client: EchoClient): Promise<void> {
  const call = client.makeBidiStreamRequest(
    ECHO_SERVICE.Bidi.path,
    ECHO_SERVICE.Bidi.requestSerialize,
    ECHO_SERVICE.Bidi.responseDeserialize,
    new grpc.Metadata(),
    { deadline: Date.now() + 3 * DEADLINE_MS },
  );
  const [got] = await Promise.all([collect(call), writeAll(call, MESSAGES, SMALL)]);
  assert.equal(got.length, MESSAGES);
  assert.ok(
    got.every((m, i) => m.seq === i && m.pad?.length === SMALL),
    "every echo, in order, intact",
  );
}

async function checkDeadline(client: EchoClient, app: GrpcApp): Promise<void> {
  const started = performance.now();
  const r = await unary(client, { text: "hang" }, { deadlineMs: 300 });
  assert.equal(r.error?.code, grpc.status.DEADLINE_EXCEEDED, r.error?.message);
  assert.ok(performance.now() - started < 5000);
  // The app saw the deadline (grpc-timeout: at most what the client set, minus the way there) and
  // the call's cancellation.
  const left = await app.cancelled;
  assert.ok(left > 0 && left <= 300, `deadline at the app: ${left} ms left of 300`);
}

// ---- DIRECT: client → server, no mesh ----------------------------------------------------------

test("direct: unary call with metadata", async () => {
  const app = await startGrpcApp("echo");
  await checkUnary(echoClient(`127.0.0.1:${app.port}`), ["echo"]);
});

test("direct: server streaming, 10k messages read by grpc-js", async () => {
  const app = await startGrpcApp("echo");
  await checkServerStreamRead(echoClient(`127.0.0.1:${app.port}`));
});

test("direct: server streaming, 10k messages, the server stalls while the client does not read", async () => {
  const app = await startGrpcApp("echo");
  await checkServerStream(app.port, app);
});

test("direct: client streaming, 10k messages, the client stalls while the server does not read", async () => {
  const app = await startGrpcApp("echo");
  await checkClientStream(echoClient(`127.0.0.1:${app.port}`), app);
});

test("direct: bidi streaming, 10k messages each way", async () => {
  const app = await startGrpcApp("echo");
  await checkBidi(echoClient(`127.0.0.1:${app.port}`));
});

test("direct: a deadline ends the call with DEADLINE_EXCEEDED and cancels it at the server", async () => {
  const app = await startGrpcApp("echo");
  await checkDeadline(echoClient(`127.0.0.1:${app.port}`), app);
});

test("direct: grpc-js reads weft's gRPC-shaped local reply as `UNAVAILABLE: upstream_unavailable: …`", async () => {
  const reply = grpcLocalReply("upstream_unavailable", "catalog.default has no endpoints");
  const { port } = await startTrailersOnlyServer(reply.status, reply.headers);
  const r = await unary(echoClient(`127.0.0.1:${port}`), { text: "x" });
  assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
  assert.equal(r.error?.details, "upstream_unavailable: catalog.default has no endpoints");
  assert.equal(r.error?.message, "14 UNAVAILABLE: upstream_unavailable: catalog.default has no endpoints");
  assert.deepEqual(r.error?.metadata.get("x-weft-error"), ["upstream_unavailable"]);
});

test("direct: a hostile detail (CR/LF, non-ASCII, %) reaches the grpc-js caller intact and harmless", async () => {
  const detail = "peer said: bad\r\nx-injected: 1 — ünïcödé ☃ 100%";
  const reply = grpcLocalReply("upstream_reset", detail);
  const { port } = await startTrailersOnlyServer(reply.status, reply.headers);
  const r = await unary(echoClient(`127.0.0.1:${port}`), { text: "x" });
  assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
  assert.equal(r.error?.details, `upstream_reset: ${detail}`);
  assert.deepEqual(r.error?.metadata.get("x-injected"), [], "no header was injected");
});

// ---- MESH: the same calls through a client sidecar (--upstream) and server sidecars -------------

const { mesh, stop } = grpcMesh();
after(stop);

/** The mesh, every call pinned to `app` for the duration of test `t`. */
async function pinned(t: TestContext, app: string) {
  return pinnedTo(t, await mesh(), app);
}

test("mesh: unary call through both sidecars, metadata kept, grpc_status on metrics", async () => {
  const m = await mesh();
  await checkUnary(m.catalog, ["catalog-v1", "catalog-v2"]);
  assert.ok(metricSum(await metrics(m), "weft_requests_total", { grpc_status: "0" }) > 0);
});

// The streaming and deadline tests pin calls to v1 (a GRPCRoute), so they know which app to watch.

test("mesh: server streaming, 10k messages read by grpc-js", async () => {
  await checkServerStreamRead((await mesh()).catalog);
});

test("mesh: server streaming, 10k messages, back-pressure reaches the server", async (t) => {
  const m = await pinned(t, "catalog-v1");
  await checkServerStream(m.catalogPort, m.v1);
});

test("mesh: client streaming, 10k messages, back-pressure reaches the client", async (t) => {
  const m = await pinned(t, "catalog-v1");
  await checkClientStream(m.catalog, m.v1);
});

test("mesh: bidi streaming, 10k messages each way", async () => {
  await checkBidi((await mesh()).catalog);
});

test("mesh: the caller's deadline is the request's; the app sees grpc-timeout and the cancellation", async (t) => {
  const m = await pinned(t, "catalog-v1");
  await checkDeadline(m.catalog, m.v1);
});

test("mesh: no endpoints → the grpc-js caller sees `UNAVAILABLE: upstream_unavailable: …`", async () => {
  const m = await mesh();
  const r = await unary(m.nowhere, { text: "x" }, { deadlineMs: DEADLINE_MS });
  assert.equal(r.error?.code, grpc.status.UNAVAILABLE, r.error?.message);
  assert.match(r.error!.details, /^upstream_unavailable: /);
  assert.deepEqual(r.error!.metadata.get("x-weft-error"), ["upstream_unavailable"]);
  assert.ok(metricSum(await metrics(m), "weft_requests_total", { grpc_status: "14" }) > 0);
});
