// The hello's appPorts (a multi-port instance's service port → app port map) come from the proxy, so
// they are checked like any hostile input: shape, names, port ranges and how many.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { HelloMessage } from "../../model/stream-protocol.ts";
import { checkHello } from "./hello-check.ts";

const peer = { id: "spiffe://weft.local/ns/default/sa/web", namespace: "default", service: "web" };
const hello = (appPorts: unknown): HelloMessage =>
  ({
    type: "hello",
    workload: "web-1",
    address: "127.0.0.1",
    port: 15006,
    appPort: 8080,
    appPorts,
  }) as unknown as HelloMessage;

test("hello.appPorts: a map of port numbers or names to app ports is accepted", () => {
  assert.equal(checkHello(hello({ grpc: 9090, "6379": 16379 }), peer), undefined);
  assert.equal(checkHello(hello(undefined), peer), undefined);
});

test("hello.appPorts: wrong shapes, bad names, ports out of range and too many entries are refused by name", () => {
  for (const [value, message] of [
    [[9090], /hello\.appPorts must map service ports/],
    [null, /hello\.appPorts must map service ports/],
    ["grpc=9090", /hello\.appPorts must map service ports/],
    [{ Grpc: 9090 }, /"Grpc" is not a port number or name/],
    [{ ["x".repeat(5000)]: 1 }, /is not a port number or name/],
    [{ grpc: 0 }, /hello\.appPorts\.grpc must be a port number/],
    [{ grpc: 70000 }, /hello\.appPorts\.grpc must be a port number/],
    [{ grpc: "9090" }, /hello\.appPorts\.grpc must be a port number/],
    [{ grpc: 1.5 }, /hello\.appPorts\.grpc must be a port number/],
    [Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`p${i}`, 1000 + i])), /at most 100 ports/],
  ] as const) {
    const problem = checkHello(hello(value), peer);
    assert.ok(
      problem !== undefined && message.test(problem),
      `${JSON.stringify(value).slice(0, 60)}: ${problem}`,
    );
  }
  // A long name is quoted cut short, never echoed whole.
  assert.ok((checkHello(hello({ ["x".repeat(5000)]: 1 }), peer) ?? "").length < 200);
});
