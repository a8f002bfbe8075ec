// The HTTP/2 edge against hostile clients: rapid reset (CVE-2023-44487) and oversized header lists.

import { RequestEvents } from "../pipeline/events.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { ProxyMetrics } from "../metrics/registry.ts";
import { H2Edge, resetStream } from "./h2-edge.ts";
import { LocalReplies } from "./local-reply.ts";

/** An H2Edge behind a plain listener that hands it every connection. */
async function edgeOn(t: { after(fn: () => unknown): void }, opts: ConstructorParameters<typeof H2Edge>[0]) {
  const edge = new H2Edge(opts);
  const front = net.createServer((s) => edge.accept(s));
  front.listen(0, "127.0.0.1");
  await once(front, "listening");
  t.after(() => {
    edge.closeAllConnections();
    front.close();
  });
  return { edge, port: (front.address() as net.AddressInfo).port };
}

test("rapid reset: a client that resets more streams per second than allowed gets GOAWAY ENHANCE_YOUR_CALM", async (t) => {
  let handled = 0;
  const { edge, port } = await edgeOn(t, {
    replies: new LocalReplies(new ProxyMetrics(), "outbound"),
    events: new RequestEvents([]),
    handler: () => handled++, // never answers: each stream stays open until the client resets it
    maxResetsPerSecond: 20,
    now: () => 0, // every reset falls in the same second
  });
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on("error", () => {});
  const goaway = once(client, "goaway") as Promise<[number]>;
  for (let i = 0; i < 60; i++) {
    const s = client.request({ ":path": `/${i}` });
    s.on("error", () => {});
    s.on("ready", () => s.close(http2.constants.NGHTTP2_CANCEL));
  }
  const [code] = await goaway;
  assert.equal(code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  assert.equal(edge.calmedDown, 1);
  assert.ok(handled > 20, `the limit counts resets of streams that reached the handler (${handled})`);
});

test("resets within the limit leave the connection alone", async (t) => {
  const { edge, port } = await edgeOn(t, {
    replies: new LocalReplies(new ProxyMetrics(), "outbound"),
    events: new RequestEvents([]),
    handler: (stream, headers) => {
      if (headers[":path"] === "/ok") stream.respond({ ":status": 204 }, { endStream: true });
    },
    maxResetsPerSecond: 20,
    now: () => 0,
  });
  const client = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => client.close());
  const closed: Promise<unknown>[] = [];
  for (let i = 0; i < 10; i++) {
    const s = client.request({ ":path": `/${i}` });
    s.on("error", () => {});
    closed.push(once(s, "close"));
    s.on("ready", () => s.close(http2.constants.NGHTTP2_CANCEL));
  }
  await Promise.all(closed);
  const ok = client.request({ ":path": "/ok" });
  ok.end();
  const [h] = (await once(ok, "response")) as [http2.IncomingHttpHeaders];
  assert.equal(h[":status"], 204);
  assert.equal(edge.calmedDown, 0);
});

test("a header list over the limit never reaches the handler; the connection serves the next request", async (t) => {
  const paths: string[] = [];
  const { port } = await edgeOn(t, {
    replies: new LocalReplies(new ProxyMetrics(), "outbound"),
    events: new RequestEvents([]),
    handler: (stream, headers) => {
      paths.push(String(headers[":path"]));
      stream.respond({ ":status": 200 }, { endStream: true });
    },
    maxHeaderListSize: 4096,
  });
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on("error", () => {});
  t.after(() => client.close());
  await once(client, "remoteSettings");
  const big = client.request({ ":path": "/big", "x-big": "a".repeat(8000) });
  big.on("error", () => {});
  big.end();
  await new Promise((r) => big.once("close", r));
  assert.notEqual(big.rstCode, 0, "the oversized stream was refused");
  const small = client.request({ ":path": "/small" });
  small.end();
  const [h] = (await once(small, "response")) as [http2.IncomingHttpHeaders];
  assert.equal(h[":status"], 200);
  assert.deepEqual(paths, ["/small"]);
});

test("streams the proxy resets itself (a broken-off response) do not count as the client's resets", async (t) => {
  const { edge, port } = await edgeOn(t, {
    replies: new LocalReplies(new ProxyMetrics(), "outbound"),
    events: new RequestEvents([]),
    handler: (stream, headers) => {
      if (headers[":path"] === "/ok") return stream.respond({ ":status": 204 }, { endStream: true });
      stream.respond({ ":status": 200 });
      stream.write("partial", () => resetStream(stream));
    },
    maxResetsPerSecond: 2,
    now: () => 0,
  });
  const client = http2.connect(`http://127.0.0.1:${port}`);
  t.after(() => client.close());
  for (let i = 0; i < 6; i++) {
    const s = client.request({ ":path": `/${i}` });
    s.on("error", () => {});
    s.end();
    s.resume();
    await new Promise((r) => s.once("close", r));
    assert.equal(s.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
  }
  const ok = client.request({ ":path": "/ok" });
  ok.end();
  const [h] = (await once(ok, "response")) as [http2.IncomingHttpHeaders];
  assert.equal(h[":status"], 204);
  assert.equal(edge.calmedDown, 0);
});
