// Hello is hostile input: its Workload fields are checked exactly as `weft apply` checks a Workload's
// (labels, zone), odd types are refused, and a hello larger than the stream's message limit is refused
// before it is buffered — in every case with an error naming what was wrong, and nothing stored.

import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_PROXY_MESSAGE_BYTES } from "../../model/stream-protocol.ts";
import { startHarness, type Harness, type RawProxy } from "../../../test/helpers/stream-client.ts";

async function refused(h: Harness, p: RawProxy, name: string) {
  const err = await p.next((m) => m.type === "error");
  await p.closed;
  assert.equal(await h.workload(name), undefined, "nothing stored");
  return err as { code: string; message: string };
}

test("labels and zone are checked by the Workload validator, naming the hello field", async (t) => {
  const h = await startHarness(t);
  const cases: [string, object, RegExp][] = [
    [
      "huge label value",
      { labels: { version: "v".repeat(5000) } },
      /^hello\.labels\.version: must be at most 63/,
    ],
    ["label key", { labels: { "Bad Key!": "x" } }, /^hello\.labels\["Bad Key!"\]: invalid key/],
    [
      "nested label value",
      { labels: { version: { deep: [1, 2, 3] } } },
      /^hello\.labels\.version: must be a string/,
    ],
    [
      "labels as a list",
      { labels: ["a", "b"] },
      /^hello\.labels: must be a mapping of strings to strings \(got a list\)/,
    ],
    ["zone too long", { zone: "z".repeat(300) }, /^hello\.zone: must be at most 63/],
    ["zone not a string", { zone: { region: "eu" } }, /^hello\.zone: must be a string/],
    ["empty zone", { zone: "" }, /^hello\.zone: must not be empty/],
    [
      "a label claiming another service",
      { labels: { "weft.dev/service": "payments" } },
      /^hello\.labels\["weft\.dev\/service"\]: must equal spec\.service/,
    ],
    ["reach entries", { reach: ["ok", "x".repeat(200)] }, /^hello\.reach\[1\] must be a service name/],
    ["version", { version: { not: "a string" } }, /^hello\.version must be a snapshot version string/],
    [
      "resources without a version",
      { resources: { outbound: {}, clusters: {} } },
      /^hello\.resources needs hello\.version/,
    ],
    ["resources as a list", { version: "v", resources: [] }, /^hello\.resources must be an object/],
    [
      "resources with another section",
      { version: "v", resources: { outbound: {}, clusters: {}, secrets: {} } },
      /^hello\.resources has an unknown section "secrets"/,
    ],
    [
      "a resource version that is no string",
      { version: "v", resources: { outbound: { "a.default": { deep: 1 } }, clusters: {} } },
      /^hello\.resources\.outbound\["a\.default"\] must be a version string/,
    ],
    [
      "a resource version too long",
      { version: "v", resources: { outbound: {}, clusters: { c: "f".repeat(65) } } },
      /^hello\.resources\.clusters\["c"\] must be a version string/,
    ],
    [
      "a resource key too long",
      { version: "v", resources: { outbound: { ["k".repeat(300)]: "h" }, clusters: {} } },
      /^hello\.resources\.outbound has a key of 300 characters/,
    ],
    [
      "too many resources",
      {
        version: "v",
        resources: {
          outbound: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [i, "h"])),
          clusters: {},
        },
      },
      /^hello\.resources\.outbound may hold at most 4096 entries/,
    ],
  ];
  for (const [what, hello, expected] of cases) {
    const p = await h.open("alpha", hello);
    const err = await refused(h, p, "alpha-1");
    assert.equal(err.code, "bad_hello", what);
    assert.match(err.message, expected, what);
    assert.ok(err.message.length <= 300, `${what}: the message is bounded (${err.message.length})`);
  }
  // What `weft apply` accepts, a hello may carry.
  const ok = await h.open("alpha", {
    labels: { version: "v2", "example.com/team": "core" },
    zone: "eu-west-1a",
  });
  await ok.next((m) => m.type === "snapshot");
  const stored = await h.workload("alpha-1");
  assert.deepEqual(stored?.metadata.labels, { version: "v2", "example.com/team": "core" });
  assert.equal(stored?.spec.zone, "eu-west-1a");
});

test("an 8 MB hello is refused as too large, without being buffered whole, and nothing is stored", async (t) => {
  const h = await startHarness(t);
  const p = await h.open("beta", { labels: { version: "v".repeat(8 * 1024 * 1024) } });
  const err = await refused(h, p, "beta-1");
  assert.equal(err.code, "message_too_large");
  assert.equal(err.message, `a stream message exceeds the limit of ${MAX_PROXY_MESSAGE_BYTES} bytes`);
});

test("a line of garbage, or a message that is not an object, ends the stream with bad_message", async (t) => {
  const h = await startHarness(t);
  for (const line of ["{not json\n", "[[[[[[[[[[[[[[[[[[[[\n", "42\n", "null\n"]) {
    const p = await h.open("gamma", null);
    p.stream.write(line);
    const err = await refused(h, p, "gamma-1");
    assert.equal(err.code, "bad_message", line);
  }
});

test("a stream that never says hello is ended after the grace period with no_hello", async (t) => {
  const h = await startHarness(t, { graceSeconds: 1 });
  const p = await h.open("silent", null);
  const err = (await p.next((m) => m.type === "error")) as { code: string; message: string };
  assert.equal(err.code, "no_hello");
  assert.match(err.message, /no hello within 1 s/);
  await p.closed; // ended by the control plane: the client never closes it
});
