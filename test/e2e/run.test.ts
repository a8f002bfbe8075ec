// `weft run`: the app starts only once its proxy is ready, talks to the mesh through HTTP_PROXY, its
// exit code becomes weft's, signals reach it, and nothing is left behind.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import {
  startApp,
  startControlPlane,
  startProxy,
  waitUntil,
  type ControlPlaneProcess,
} from "../helpers/mesh.ts";
import { ROOT, spawnWeft, tempDir, weft } from "../helpers/processes.ts";

const APP = join(ROOT, "test", "fixtures", "run-app.js");
let cp: ControlPlaneProcess;

before(async () => {
  cp = await startControlPlane();
  const echo = await startApp("echo");
  await startProxy(cp, "echo", echo.port);
});

/** Running, not a zombie waiting for its (new) parent to reap it. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

const runArgs = (service: string) => [
  "run",
  "--service",
  service,
  "--port",
  "4999",
  "--inbound-port",
  "0",
  "--outbound-port",
  "0",
  "--admin-port",
  "0",
];

test("the app starts after its proxy is ready, reaches the mesh through HTTP_PROXY, and its exit code propagates", async () => {
  const result = join(tempDir(), "result.json");
  const r = await weft([...runArgs("jobs"), "--", process.execPath, APP], {
    ...cp.env,
    RESULT_FILE: result,
    EXIT_CODE: "7",
    CALL_URL: "http://echo/from-job",
  });
  assert.equal(r.code, 7, r.stderr);
  const seen = JSON.parse(readFileSync(result, "utf8"));
  assert.equal(seen.readyAtStart, 200, "the proxy was ready when the app started");
  assert.match(seen.env.HTTP_PROXY, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(seen.env.HTTP_PROXY, seen.env.http_proxy);
  assert.equal(seen.env.WEFT_SERVICE, "jobs");
  assert.equal(seen.env.WEFT_IDENTITY, "spiffe://weft.local/ns/default/sa/jobs");
  assert.equal(seen.env.PORT, "4999");
  assert.equal(seen.env.WEFT_TOKEN, undefined, "the join token is not passed to the app");
  assert.ok(cp.env.WEFT_CONFIG, "weft run itself was given WEFT_CONFIG");
  assert.equal(seen.env.WEFT_CONFIG, undefined, "the admin credential's location is not passed to the app");
  assert.equal(seen.call.status, 200);
  assert.equal(JSON.parse(seen.call.body).app, "echo");
  // Its workload is deregistered at once on exit (not after the grace period).
  const g = await weft(["get", "workloads", "-o", "json"], cp.env);
  assert.ok(!g.stdout.includes('"service": "jobs"'), "the finished job's workload is gone");
});

test("SIGTERM reaches the app and its children; weft run exits and leaves no process behind", async () => {
  const result = join(tempDir(), "result.json");
  const run = spawnWeft([...runArgs("worker"), "--", process.execPath, APP], {
    ...cp.env,
    RESULT_FILE: result,
    GRANDCHILD: "1",
    CALL_URL: "http://echo/before-sigterm",
  });
  await waitUntil(() => existsSync(result), 10_000, "the app to start");
  const seen = JSON.parse(readFileSync(result, "utf8"));
  assert.ok(alive(seen.pid) && alive(seen.grandchild));
  assert.equal(seen.call.status, 200, "the sidecar carried traffic before the signal");
  const signalledAt = Date.now();
  run.proc.kill("SIGTERM");
  const { code } = await run.exited;
  assert.ok(Date.now() - signalledAt < 3000, `weft run took ${Date.now() - signalledAt} ms to exit`);
  assert.equal(code, 128 + 15, "exit status reflects the app's death by SIGTERM");
  await waitUntil(() => !alive(seen.pid) && !alive(seen.grandchild), 3000, "app and grandchild to be gone");
});

const HAS_SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].some((p) => existsSync(p));

test(
  "weft run killed outright (SIGKILL): the kernel stops the app, nothing is orphaned",
  {
    skip: HAS_SETPRIV ? false : "needs util-linux's setpriv",
  },
  async () => {
    const result = join(tempDir(), "result.json");
    const run = spawnWeft([...runArgs("orphan-check"), "--", process.execPath, APP], {
      ...cp.env,
      RESULT_FILE: result,
    });
    await waitUntil(() => existsSync(result), 10_000, "the app to start");
    const seen = JSON.parse(readFileSync(result, "utf8"));
    assert.ok(alive(seen.pid));
    run.proc.kill("SIGKILL");
    await run.exited;
    await waitUntil(() => !alive(seen.pid), 3000, "the app to be stopped after weft run was killed");
  },
);

test("an app that cannot start: weft run says so and exits 127", async () => {
  const r = await weft([...runArgs("broken"), "--", "/nonexistent/binary"], cp.env);
  assert.equal(r.code, 127);
  assert.match(r.stderr, /cannot start \/nonexistent\/binary/);
});

test("weft run without a command, or without --service, is a usage error", async () => {
  let r = await weft(["run", "--service", "x", "--port", "1"], cp.env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /missing the app's command/);
  r = await weft(["run", "--port", "1", "--", "true"], cp.env);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--service is required/);
});
