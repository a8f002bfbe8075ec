// The exchange as the transport's handler, against the contract's edge cases: a transport that hands
// over response body bytes before the response head (the node:http2 ordering bug of
// ../transport/h2-stream.ts) gets a loud failure — the upstream request aborted and a 502 to the client —
// never a body silently dropped and a short response presented as complete.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { LocalReply } from "../errors.ts";
import type { StatsByCode } from "../metrics/registry.ts";
import { RequestEvents } from "./events.ts";
import { Exchange } from "./exchange.ts";

class RecordingExchange extends Exchange {
  readonly calls: string[] = [];
  readonly draining = false;
  constructor() {
    super("GET", "http", undefined as unknown as StatsByCode, new RequestEvents([]));
  }
  sendHead(status: number): boolean {
    this.calls.push(`head ${status}`);
    return true;
  }
  write(chunk: Buffer): boolean {
    this.calls.push(`write ${chunk.length}`);
    return true;
  }
  end(): void {
    this.calls.push("end");
  }
  abort(): void {
    this.calls.push("abort");
  }
  sendLocalReply(reply: LocalReply): number {
    this.calls.push(`reply ${reply.status} ${reply.code}: ${reply.detail}`);
    return reply.status;
  }
  header(): string | undefined {
    return undefined;
  }
  watchClient(): void {}
  discardBody(): void {}
  clientOpen(): boolean {
    return true;
  }
  closeAfterResponse(): void {}
}

test("body bytes before the response head: the upstream is aborted and the client gets a 502, nothing dropped silently", () => {
  const x = new RecordingExchange();
  x.upstream = "api at 127.0.0.1:1";
  const aborts: string[] = [];
  x.onConnect((err) => aborts.push(err?.message ?? ""));
  assert.equal(x.onData(Buffer.alloc(100)), false, "the transport is told to stop");
  assert.deepEqual(x.calls, ["reply 502 upstream_reset: api at 127.0.0.1:1: response body before its head"]);
  assert.deepEqual(aborts, ["response body before its head"]);
  // What the transport does next changes nothing: the exchange is over.
  x.onHeaders(200, ["content-length", "100"], () => {});
  x.onComplete(null);
  assert.equal(x.calls.length, 1);
});

test("in order, the same bytes stream through: head, body, end", () => {
  const x = new RecordingExchange();
  x.onConnect(() => assert.fail("not aborted"));
  assert.equal(
    x.onHeaders(200, ["content-length", "100"], () => {}),
    true,
  );
  assert.equal(x.onData(Buffer.alloc(100)), true);
  x.onComplete(null);
  assert.deepEqual(x.calls, ["head 200", "write 100", "end"]);
});
