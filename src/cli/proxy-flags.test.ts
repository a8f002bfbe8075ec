// The proxy flags shared by `weft proxy` and `weft run`, turned into ProxyOptions.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CliError } from "./command.ts";
import { resolveProxyOptions } from "./proxy-flags.ts";

const base = {
  service: "api",
  port: "3000",
  server: "https://cp",
  stream: "https://cp:1",
};

test("--response-headers-timeout takes a Gateway API duration; a bad one is refused before anything else", async () => {
  await assert.rejects(
    resolveProxyOptions({ ...base, "response-headers-timeout": "5x" }),
    (e: unknown) =>
      e instanceof CliError && /--response-headers-timeout "5x" is not a duration/.test(e.message),
  );
  process.env.WEFT_TOKEN = "t";
  try {
    const o = await resolveProxyOptions({
      ...base,
      "ca-file": import.meta.filename,
      "response-headers-timeout": "1m30s",
    });
    assert.equal(o.responseHeadersTimeoutMs, 90_000);
    const d = await resolveProxyOptions({ ...base, "ca-file": import.meta.filename });
    assert.equal(d.responseHeadersTimeoutMs, undefined, "no limit unless asked");
  } finally {
    delete process.env.WEFT_TOKEN;
  }
});

test("every duration flag takes the same forms: a Gateway API duration or whole milliseconds", async () => {
  process.env.WEFT_TOKEN = "t";
  try {
    const withDelay = (d: string) =>
      resolveProxyOptions({ ...base, "ca-file": import.meta.filename, "drain-delay": d });
    assert.equal((await withDelay("3s")).drainDelayMs, 3000);
    assert.equal((await withDelay("1500")).drainDelayMs, 1500, "a bare number is milliseconds");
    assert.equal((await withDelay("0s")).drainDelayMs, 0);
    for (const bad of ["-1", "1.5s", "2 s", "25h", "", "99999999999"])
      await assert.rejects(
        withDelay(bad),
        (e: unknown) => e instanceof CliError && e.message.startsWith(`--drain-delay ${JSON.stringify(bad)}`),
        bad,
      );
  } finally {
    delete process.env.WEFT_TOKEN;
  }
});

test("--upstream SVC[:SVCPORT]=PORT and --app-port SVCPORT=PORT; malformed ones are refused by name", async () => {
  process.env.WEFT_TOKEN = "t";
  try {
    const withFlags = (flags: Record<string, string[]>) =>
      resolveProxyOptions({ ...base, "ca-file": import.meta.filename, ...flags });
    const o = await withFlags({
      upstream: ["cache=16379", "orders:9090=0"],
      "app-port": ["grpc=9191", "6379=16379"],
    });
    assert.deepEqual(o.upstreams, [
      { service: "cache", port: 16379 },
      { service: "orders", port: 0, servicePort: 9090 },
    ]);
    assert.deepEqual(o.appPorts, { grpc: 9191, "6379": 16379 });
    assert.equal((await withFlags({})).appPorts, undefined);
    for (const [flags, message] of [
      [{ upstream: ["a:b:c=1"] }, /--upstream expects SVC=PORT or SVC:SVCPORT=PORT/],
      [{ upstream: ["a:0=1"] }, /the service port must be 1-65535/],
      [{ "app-port": ["Grpc=1"] }, /"Grpc" is not a port number or name/],
      [{ "app-port": ["grpc=0"] }, /the app port must be 1-65535/],
      [{ "app-port": ["grpc"] }, /--app-port expects NAME=VALUE/],
    ] as const)
      await assert.rejects(
        withFlags(flags as unknown as Record<string, string[]>),
        (e: unknown) => e instanceof CliError && message.test(e.message),
      );
  } finally {
    delete process.env.WEFT_TOKEN;
  }
});

test("--upgrade-idle-timeout takes a duration, must be > 0, and defaults to the listeners' hour", async () => {
  process.env.WEFT_TOKEN = "t";
  try {
    const o = await resolveProxyOptions({
      ...base,
      "ca-file": import.meta.filename,
      "upgrade-idle-timeout": "10m",
    });
    assert.equal(o.upgradeIdleTimeoutMs, 600_000);
    const d = await resolveProxyOptions({ ...base, "ca-file": import.meta.filename });
    assert.equal(d.upgradeIdleTimeoutMs, undefined);
    await assert.rejects(
      resolveProxyOptions({ ...base, "ca-file": import.meta.filename, "upgrade-idle-timeout": "0s" }),
      (e: unknown) => e instanceof CliError && /--upgrade-idle-timeout must be more than 0/.test(e.message),
    );
  } finally {
    delete process.env.WEFT_TOKEN;
  }
});

test("on-demand flags: --reach names or '*' alone, --discovery-timeout and --subscription-idle durations", async () => {
  process.env.WEFT_TOKEN = "t";
  try {
    const withFlags = (flags: Record<string, unknown>) =>
      resolveProxyOptions({ ...base, "ca-file": import.meta.filename, ...flags });
    const d = await withFlags({});
    assert.equal(d.reach, undefined, "on demand, nothing pre-loaded");
    const o = await withFlags({
      reach: ["api", "db.data"],
      "discovery-timeout": "500ms",
      "subscription-idle": "1h",
    });
    assert.deepEqual(o.reach, ["api", "db.data"]);
    assert.equal(o.discoveryTimeoutMs, 500);
    assert.equal(o.subscriptionIdleMs, 3_600_000);
    assert.deepEqual((await withFlags({ reach: ["*"] })).reach, ["*"]);
    for (const [flags, expected] of [
      [{ reach: ["*", "api"] }, /--reach '\*' \(the whole mesh\) cannot be combined/],
      [{ reach: ["Bad Name"] }, /--reach "Bad Name" is not a service name/],
      [{ "discovery-timeout": "0s" }, /--discovery-timeout must be more than 0/],
      [{ "subscription-idle": "soon" }, /--subscription-idle "soon" is not a duration/],
    ] as [Record<string, unknown>, RegExp][])
      await assert.rejects(
        withFlags(flags),
        (e: unknown) => e instanceof CliError && expected.test(e.message),
      );
  } finally {
    delete process.env.WEFT_TOKEN;
  }
});
