// gRPC end to end with @grpc/grpc-js on both sides (a client and server nobody here wrote): unary,
// the three streaming kinds with 10k messages each way and back-pressure, deadlines, retries on
// UNAVAILABLE, GRPCRoute splits and matches, gRPC-status faults and gRPC-shaped local replies.
//
// Each scenario runs twice where that makes sense: DIRECT (client → server, no mesh) proves the test
// and its helpers right; MESH sends the same calls through a client sidecar's --upstream port and a
// server sidecar. The MESH tests need the HTTP/2 data path (issue 7, tasks A and D): until it lands
// they are marked todo — one constant below — and the mesh starts only when the first of them runs.

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
import {
  apply,
  httpGet,
  startApp,
  startControlPlane,
  startProxy,
  waitUntil,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "../helpers/mesh.ts";
import { weft } from "../helpers/processes.ts";

/**
 * Set to true once the h2 data path has landed: the MESH tests then run for real. Until then they are
 * todo and fail at once (starting a mesh that cannot carry gRPC would only cost CI time).
 */
const MESH_READY = true;
const MESH: { todo?: string } = MESH_READY ? {} : { todo: "needs the h2 data path" };

const MESSAGES = 10_000;
/** Back-pressure tests: 256 B per message, 10k of them ~2.5 MiB, far beyond every flow-control window on the way. */
const PAD = 256;
/** Plain streaming tests: small messages, so 10k each way stay quick on a shared CPU. */
const SMALL = 16;
/** Every call through the mesh has a deadline, so a broken path fails the test instead of hanging it. */
const DEADLINE_MS = 10_000;

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

interface Mesh {
  cp: ControlPlaneProcess;
  v1: GrpcApp;
  v2: GrpcApp;
  client: ProxyProcess;
  catalog: EchoClient;
  /** The client sidecar's --upstream port for catalog. */
  catalogPort: number;
  nowhere: EchoClient;
}

let meshPromise: Promise<Mesh> | undefined;
after(async () => {
  if (meshPromise) await (await meshPromise.catch(() => undefined))?.cp.stop();
});

/** Started by the first MESH test that runs; stopped after the file. */
function mesh(): Promise<Mesh> {
  if (!MESH_READY) return Promise.reject(new Error("needs the h2 data path (set MESH_READY)"));
  return (meshPromise ??= (async () => {
    const cp = await startControlPlane();
    await apply(
      cp,
      `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog }
spec: { ports: [{ port: 9090, protocol: grpc }] }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog-v1 }
spec: { selector: { weft.dev/service: catalog, version: v1 } }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: catalog-v2 }
spec: { selector: { weft.dev/service: catalog, version: v2 } }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: nowhere }
spec: { ports: [{ port: 9090, protocol: grpc }] }
`,
    );
    const [v1, v2, web] = await Promise.all([
      startGrpcApp("catalog-v1"),
      startGrpcApp("catalog-v2"),
      startApp("web"),
    ]);
    await Promise.all([
      startProxy(cp, "catalog", v1.port, ["--label", "version=v1"]),
      startProxy(cp, "catalog", v2.port, ["--label", "version=v2"]),
    ]);
    const client = await startProxy(cp, "web", web.port, [
      "--upstream",
      "catalog=0",
      "--upstream",
      "nowhere=0",
    ]);
    const portOf = (svc: string) =>
      Number(client.output().match(new RegExp(`upstream ${svc}=127\\.0\\.0\\.1:(\\d+)`))?.[1]);
    const m: Mesh = {
      cp,
      v1,
      v2,
      client,
      catalog: echoClient(`127.0.0.1:${portOf("catalog")}`),
      catalogPort: portOf("catalog"),
      nowhere: echoClient(`127.0.0.1:${portOf("nowhere")}`),
    };
    // Both instances answer before any test counts on them.
    const seen = new Set<string>();
    await waitUntil(
      async () => {
        const r = await unary(m.catalog, { text: "warm-up" }, { deadlineMs: 2000 });
        if (r.value?.app) seen.add(r.value.app);
        return seen.size === 2;
      },
      5000,
      "both catalog instances answering through the mesh",
    );
    return m;
  })());
}

async function metrics(m: Mesh): Promise<string> {
  return (await httpGet(m.client.adminPort, "/metrics")).body;
}

/** Applies `yaml` for one test and deletes what it applied afterwards. */
async function applyFor(t: TestContext, m: Mesh, yaml: string, resources: [string, string][]): Promise<void> {
  await apply(m.cp, yaml);
  t.after(async () => {
    for (const [kind, name] of resources) await weft(["delete", kind, name], m.cp.env);
  });
}

test("mesh: unary call through both sidecars, metadata kept, grpc_status on metrics", MESH, async () => {
  const m = await mesh();
  await checkUnary(m.catalog, ["catalog-v1", "catalog-v2"]);
  assert.ok(metricSum(await metrics(m), "weft_requests_total", { grpc_status: "0" }) > 0);
});

// The streaming and deadline tests pin calls to v1 (a GRPCRoute), so they know which app to watch.

test("mesh: server streaming, 10k messages read by grpc-js", MESH, async () => {
  await checkServerStreamRead((await mesh()).catalog);
});

test("mesh: server streaming, 10k messages, back-pressure reaches the server", MESH, async (t) => {
  const m = await pinned(t, "catalog-v1");
  await checkServerStream(m.catalogPort, m.v1);
});

test("mesh: client streaming, 10k messages, back-pressure reaches the client", MESH, async (t) => {
  const m = await pinned(t, "catalog-v1");
  await checkClientStream(m.catalog, m.v1);
});

test("mesh: bidi streaming, 10k messages each way", MESH, async () => {
  await checkBidi((await mesh()).catalog);
});

test(
  "mesh: the caller's deadline is the request's; the app sees grpc-timeout and the cancellation",
  MESH,
  async (t) => {
    const m = await pinned(t, "catalog-v1");
    await checkDeadline(m.catalog, m.v1);
  },
);

test("mesh: a GRPCRoute retry on unavailable turns a failing first attempt into success", MESH, async (t) => {
  const m = await mesh();
  await applyFor(
    t,
    m,
    `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: retry }
spec:
  parentRefs: [{ kind: Service, name: catalog }]
  rules:
    - backendRefs: [{ name: catalog }]
      retry: { attempts: 2, on: [unavailable], backoff: 1ms }
`,
    [["grpcroute", "retry"]],
  );
  await waitUntil(
    async () => (await unary(m.catalog, { text: "probe" }, { deadlineMs: 2000 })).value !== undefined,
    DEADLINE_MS,
    "route applied",
  );
  const before = metricSum(await metrics(m), "weft_retries_total");
  t.after(() => {
    m.v1.failNext(0, grpc.status.OK);
    m.v2.failNext(0, grpc.status.OK);
  });
  m.v1.failNext(1, grpc.status.UNAVAILABLE);
  m.v2.failNext(1, grpc.status.UNAVAILABLE);
  const r = await unary(m.catalog, { text: "retry me" }, { deadlineMs: DEADLINE_MS });
  assert.equal(r.error, undefined, r.error?.message);
  assert.equal(r.value?.text, "retry me");
  assert.ok(metricSum(await metrics(m), "weft_retries_total") > before, "the retry is counted");
});

/**
 * Applies a GRPCRoute with retries on unavailable over both catalog instances for one test, and
 * waits until it is in force: a unary call that both instances refuse once succeeds only by retrying.
 */
async function retryRoute(t: TestContext): Promise<Mesh> {
  const m = await mesh();
  await applyFor(
    t,
    m,
    `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: stream-retry }
spec:
  parentRefs: [{ kind: Service, name: catalog }]
  rules:
    - backendRefs: [{ name: catalog }]
      retry: { attempts: 2, on: [unavailable], backoff: 1ms }
`,
    [["grpcroute", "stream-retry"]],
  );
  const healthy = () => {
    for (const app of [m.v1, m.v2]) {
      app.failNext(0, grpc.status.OK);
      app.failNextStreams(0, grpc.status.OK);
    }
  };
  t.after(healthy);
  await waitUntil(
    async () => {
      m.v1.failNext(1, grpc.status.UNAVAILABLE);
      m.v2.failNext(1, grpc.status.UNAVAILABLE);
      return (await unary(m.catalog, { text: "retried?" }, { deadlineMs: 2000 })).value !== undefined;
    },
    DEADLINE_MS,
    "the retry route in force",
  );
  healthy();
  return m;
}

/** A client-streaming call that the test writes by hand; `answer` settles with its response. */
function clientStream(client: EchoClient): {
  call: grpc.ClientWritableStream<EchoMessage>;
  answer: Promise<{ value?: EchoMessage; error?: grpc.ServiceError }>;
} {
  let call!: grpc.ClientWritableStream<EchoMessage>;
  const answer = new Promise<{ value?: EchoMessage; error?: grpc.ServiceError }>((resolve) => {
    call = client.makeClientStreamRequest(
      ECHO_SERVICE.ClientStream.path,
      ECHO_SERVICE.ClientStream.requestSerialize,
      ECHO_SERVICE.ClientStream.responseDeserialize,
      new grpc.Metadata(),
      { deadline: Date.now() + DEADLINE_MS },
      (error, value) => resolve({ error: error ?? undefined, value }),
    );
  });
  return { call, answer };
}

const streamedBy = (m: Mesh) => m.v1.streamed.messages + m.v2.streamed.messages;

test(
  "mesh: on a route with retries, client-streaming and bidi calls flow as they are written",
  MESH,
  async (t) => {
    const m = await retryRoute(t);
    // Client streaming: the client waits for the app to read its first messages before it ends
    // the stream. A proxy that read the whole body before sending the first attempt stalls here.
    const before = streamedBy(m);
    const { call, answer } = clientStream(m.catalog);
    for (let i = 0; i < 3; i++) call.write({ seq: i, pad: "a" });
    await waitUntil(() => streamedBy(m) - before >= 3, DEADLINE_MS, "the app reading the stream's start");
    for (let i = 3; i < 6; i++) call.write({ seq: i, pad: "a" });
    call.end();
    const r = await answer;
    assert.equal(r.error, undefined, r.error?.message);
    assert.equal(r.value?.received, 6);

    // Bidi ping-pong: each message waits for the echo of the one before.
    const bidi = m.catalog.makeBidiStreamRequest(
      ECHO_SERVICE.Bidi.path,
      ECHO_SERVICE.Bidi.requestSerialize,
      ECHO_SERVICE.Bidi.responseDeserialize,
      new grpc.Metadata(),
      { deadline: Date.now() + DEADLINE_MS },
    );
    const echoes = bidi[Symbol.asyncIterator]();
    for (let i = 0; i < 20; i++) {
      bidi.write({ seq: i, pad: "p" });
      const echo = await echoes.next();
      assert.equal((echo.value as EchoMessage).seq, i);
    }
    bidi.end();
    assert.equal((await echoes.next()).done, true);
  },
);

test(
  "mesh: a client stream whose first attempt gets UNAVAILABLE before it ended is retried with all of it",
  MESH,
  async (t) => {
    const m = await retryRoute(t);
    const retriesBefore = metricSum(await metrics(m), "weft_retries_total");
    const callsBefore = m.v1.calls.length + m.v2.calls.length;
    const before = streamedBy(m);
    // The first attempt is refused at once, while the client is still writing.
    m.v1.failNextStreams(1, grpc.status.UNAVAILABLE);
    m.v2.failNextStreams(1, grpc.status.UNAVAILABLE);
    const { call, answer } = clientStream(m.catalog);
    for (let i = 0; i < 3; i++) call.write({ seq: i, pad: "b" });
    // The attempt that is not refused replays what was sent so far...
    await waitUntil(() => streamedBy(m) - before >= 3, DEADLINE_MS, "a retry replaying the stream's start");
    assert.ok(m.v1.calls.length + m.v2.calls.length - callsBefore >= 2, "an attempt was refused first");
    // ...then follows the live stream to its end.
    for (let i = 3; i < 6; i++) call.write({ seq: i, pad: "b" });
    call.end();
    const r = await answer;
    assert.equal(r.error, undefined, r.error?.message);
    assert.equal(r.value?.received, 6, "every message once, in order (the app checks the order)");
    assert.ok(metricSum(await metrics(m), "weft_retries_total") > retriesBefore, "the retry is counted");
  },
);

test("mesh: GRPCRoute matches by method and header, and splits by weight", MESH, async (t) => {
  const m = await mesh();
  await applyFor(
    t,
    m,
    `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: split }
spec:
  parentRefs: [{ kind: Service, name: catalog }]
  rules:
    - matches: [{ method: { service: weft.test.Echo, method: Unary }, headers: [{ name: x-version, value: v2 }] }]
      backendRefs: [{ name: catalog-v2 }]
    - matches: [{ method: { service: weft.test.Echo, method: Unary } }]
      backendRefs: [{ name: catalog-v1, weight: 3 }, { name: catalog-v2, weight: 1 }]
`,
    [["grpcroute", "split"]],
  );
  await waitUntil(
    async () =>
      (await unary(m.catalog, { text: "h" }, { metadata: { "x-version": "v2" } })).value?.app ===
      "catalog-v2",
    DEADLINE_MS,
    "route applied",
  );
  for (let i = 0; i < 10; i++) {
    const r = await unary(
      m.catalog,
      { text: "h" },
      { metadata: { "x-version": "v2" }, deadlineMs: DEADLINE_MS },
    );
    assert.equal(r.value?.app, "catalog-v2", "the header match always wins");
  }
  const counts = { "catalog-v1": 0, "catalog-v2": 0 } as Record<string, number>;
  for (let i = 0; i < 80; i++)
    counts[(await unary(m.catalog, { text: "s" }, { deadlineMs: DEADLINE_MS })).value!.app!]!++;
  assert.ok(
    counts["catalog-v1"]! > counts["catalog-v2"]! && counts["catalog-v2"]! > 0,
    JSON.stringify(counts),
  );
});

test("mesh: a FaultInjection abort with a gRPC status reaches the caller as that status", MESH, async (t) => {
  const m = await mesh();
  await applyFor(
    t,
    m,
    `apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: { name: exhausted }
spec: { abort: { grpcStatus: RESOURCE_EXHAUSTED } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: fault }
spec:
  parentRefs: [{ kind: Service, name: catalog }]
  rules:
    - matches: [{ headers: [{ name: x-fault, value: "yes" }] }]
      filters: [{ type: ExtensionRef, extensionRef: { group: weft.dev, kind: FaultInjection, name: exhausted } }]
      backendRefs: [{ name: catalog }]
    - backendRefs: [{ name: catalog }]
`,
    [
      ["grpcroute", "fault"],
      ["faultinjection", "exhausted"],
    ],
  );
  let r = await unary(m.catalog, { text: "f" }, { metadata: { "x-fault": "yes" } });
  await waitUntil(
    async () =>
      (r = await unary(m.catalog, { text: "f" }, { metadata: { "x-fault": "yes" } })).error !== undefined,
    DEADLINE_MS,
    "fault applied",
  );
  assert.equal(r.error?.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(r.error!.details, /^fault_injected: /);
});

test(
  "mesh: no endpoints → the grpc-js caller sees `UNAVAILABLE: upstream_unavailable: …`",
  MESH,
  async () => {
    const m = await mesh();
    const r = await unary(m.nowhere, { text: "x" }, { deadlineMs: DEADLINE_MS });
    assert.equal(r.error?.code, grpc.status.UNAVAILABLE, r.error?.message);
    assert.match(r.error!.details, /^upstream_unavailable: /);
    assert.deepEqual(r.error!.metadata.get("x-weft-error"), ["upstream_unavailable"]);
    assert.ok(metricSum(await metrics(m), "weft_requests_total", { grpc_status: "14" }) > 0);
  },
);

/** The mesh, with a GRPCRoute "pin" sending every call to `app` for the duration of test `t`. */
async function pinned(t: TestContext, app: string): Promise<Mesh> {
  const m = await mesh();
  await applyFor(
    t,
    m,
    `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: pin }
spec:
  parentRefs: [{ kind: Service, name: catalog }]
  rules: [{ backendRefs: [{ name: ${app} }] }]
`,
    [["grpcroute", "pin"]],
  );
  let hits = 0;
  await waitUntil(
    async () => {
      hits =
        (await unary(m.catalog, { text: "pin?" }, { deadlineMs: 2000 })).value?.app === app ? hits + 1 : 0;
      return hits >= 5;
    },
    DEADLINE_MS,
    `every call going to ${app}`,
  );
  return m;
}
