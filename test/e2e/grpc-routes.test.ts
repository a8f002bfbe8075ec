// GRPCRoute end to end with @grpc/grpc-js on both sides, through real sidecars
// (../helpers/grpc-mesh.ts): a retry on UNAVAILABLE, client-streaming and bidi calls flowing on a
// route with retries (the request body streams to the first attempt while a copy is kept for a
// retry), a streamed call retried after UNAVAILABLE, method and header matches with a weighted
// split, and a FaultInjection abort with a gRPC status.

import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { after, test, type TestContext } from "node:test";
import { metricSum } from "../helpers/control-app.ts";
import { ECHO_SERVICE, unary, type EchoClient, type EchoMessage } from "../helpers/grpc-apps.ts";
import { applyFor, DEADLINE_MS, grpcMesh, metrics, type Mesh } from "../helpers/grpc-mesh.ts";
import { waitUntil } from "../helpers/mesh.ts";

const { mesh, stop } = grpcMesh();
after(stop);

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

test("mesh: on a route with retries, client-streaming and bidi calls flow as they are written", async (t) => {
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
});

test("mesh: a client stream whose first attempt gets UNAVAILABLE before it ended is retried with all of it", async (t) => {
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
});

test("mesh: a GRPCRoute retry on unavailable turns a failing first attempt into success", async (t) => {
  const m = await retryRoute(t);
  const before = metricSum(await metrics(m), "weft_retries_total");
  m.v1.failNext(1, grpc.status.UNAVAILABLE);
  m.v2.failNext(1, grpc.status.UNAVAILABLE);
  const r = await unary(m.catalog, { text: "retry me" }, { deadlineMs: DEADLINE_MS });
  assert.equal(r.error, undefined, r.error?.message);
  assert.equal(r.value?.text, "retry me");
  assert.ok(metricSum(await metrics(m), "weft_retries_total") > before, "the retry is counted");
});

test("mesh: GRPCRoute matches by method and header, and splits by weight", async (t) => {
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

test("mesh: a FaultInjection abort with a gRPC status reaches the caller as that status", async (t) => {
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
