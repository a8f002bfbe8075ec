// The whole demo, for real: `weft demo` in a temporary directory, on ports that do not collide with a
// demo the developer may be running. Checks that traffic flows, that a traffic split applied with the
// plain CLI from that directory takes effect, that `weft demo chaos` breaks an app and the summary
// shows it, that Ctrl-C and the time limit both stop everything with exit code 0, and that no
// process is left behind.

import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { HistoryEntry } from "./demo.ts";
import { freePorts } from "./ports.ts";
import { isAlive } from "./supervisor.ts";
import { DEMO_DIR, WEFT_BIN } from "./weft-cli.ts";

interface DemoRun {
  dir: string;
  marker: string;
  output: () => string;
  waitFor: (text: string, timeoutMs: number) => Promise<void>;
  signal: (sig: NodeJS.Signals) => void;
  exit: Promise<number | null>;
}

async function startDemo(env: Record<string, string>): Promise<DemoRun> {
  const dir = await mkdtemp(join(tmpdir(), "weft-demo-"));
  const [cpPort, streamPort] = await freePorts(2);
  const marker = randomUUID();
  const proc = spawn(process.execPath, [WEFT_BIN, "demo"], {
    cwd: dir,
    env: {
      ...process.env,
      WEFT_DEMO_CP_PORT: String(cpPort),
      WEFT_DEMO_STREAM_PORT: String(streamPort),
      WEFT_DEMO_INTERVAL_MS: "1000",
      WEFT_DEMO_TEST_MARKER: marker, // inherited by every process the demo starts
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout.on("data", (c) => (out += c));
  proc.stderr.on("data", (c) => (out += c));
  const exit = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  return {
    dir,
    marker,
    output: () => out,
    signal: (sig) => proc.kill(sig),
    exit,
    async waitFor(text, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!out.includes(text)) {
        if (Date.now() > deadline) throw new Error(`demo never printed "${text}"; output:\n${out}`);
        if (proc.exitCode !== null)
          throw new Error(`demo exited (${proc.exitCode}) before printing "${text}":\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/** Pids of live processes whose environment carries the marker (Linux /proc). */
async function processesWithMarker(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const environ = await readFile(`/proc/${name}/environ`, "latin1").catch(() => "");
    if (environ.includes(`WEFT_DEMO_TEST_MARKER=${marker}`) && isAlive(Number(name)))
      found.push(Number(name));
  }
  return found;
}

async function assertNothingLeft(run: DemoRun): Promise<void> {
  const state = JSON.parse(await readFile(join(run.dir, ".weft/demo-logs/state.json"), "utf8"));
  const pids: number[] = [state.controlPlane.pid, ...state.workloads.flatMap((w: any) => [w.pid, w.appPid])];
  assert.equal(pids.length, 1 + 2 * 7, "control plane + 7 × (weft run + app)");
  assert.deepEqual(pids.filter(isAlive), [], "every demo process exited");
  assert.deepEqual(await processesWithMarker(run.marker), [], "no process of this demo is left");
}

function weftCli(cwd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [WEFT_BIN, ...args],
      { cwd, env: { ...process.env, WEFT_CONFIG: "" } },
      (err, stdout, stderr) =>
        err ? reject(new Error(`weft ${args.join(" ")}: ${stderr}`)) : resolve(stdout),
    );
  });
}

const row = (e: HistoryEntry, key: string) => e.rows.find((r) => r.key === key)!;

test(
  "the demo mesh serves traffic, follows a traffic split, and stops cleanly on Ctrl-C",
  { timeout: 150_000 },
  async (t) => {
    const run = await startDemo({ WEFT_DEMO_DURATION_MS: "120000" });
    t.after(() => rm(run.dir, { recursive: true, force: true }));
    let splitAt = 0;
    try {
      await run.waitFor("the mesh is up", 60_000);
      await new Promise((r) => setTimeout(r, 4000));
      // The user's CLI, from the same directory, with no flags: finds the demo's control plane in ./.weft.
      const applied = await weftCli(run.dir, ["apply", "-f", join(DEMO_DIR, "try/canary-3-v2-only.yaml")]);
      assert.match(applied, /httproute\/reviews \(default\) created/);
      splitAt = Date.now();
      // The chaos switch, through the CLI from the same directory: ratings now fails everything.
      assert.equal(
        await weftCli(run.dir, ["demo", "chaos", "ratings", "fail=1", "status=503"]),
        "ratings: fails every request with 503\n  (undo: weft demo chaos ratings reset)\n",
      );
      assert.match(await weftCli(run.dir, ["demo", "chaos"]), /^reviews-v3 +off$/m);
      assert.match(await weftCli(run.dir, ["get", "workloads"]), /service=reviews .*version=v2/);
      await new Promise((r) => setTimeout(r, 7000));
      run.signal("SIGINT");
      assert.equal(await run.exit, 0, run.output());
    } finally {
      run.signal("SIGKILL");
    }
    const out = run.output();
    assert.match(out, /SERVICE +REQ\/S +SUCCESS +CALLERS OK +P50 +P99 +REQUESTS/);
    assert.match(out, /canary-1-90-10\.yaml +# canary: 10% of reviews to v2/);
    assert.match(out, /SIGINT, stopping/);
    assert.match(out, /stopped \d+ processes in [\d.]+ s; logs are in \.weft\/demo-logs\//);

    const { history, exitCode } = JSON.parse(
      await readFile(join(run.dir, ".weft/demo-logs/summary.json"), "utf8"),
    ) as {
      history: HistoryEntry[];
      exitCode: number;
    };
    assert.equal(exitCode, 0);
    const last = history.at(-1)!;
    assert.ok(
      row(last, "storefront").total > 50,
      `storefront served ${row(last, "storefront").total} requests`,
    );
    const measured = history.filter((e) => row(e, "storefront").success !== undefined);
    const success = measured.at(-1) && row(measured.at(-1)!, "storefront").success!;
    assert.ok(success !== undefined && success > 0.9, `storefront success rate ${success}`);
    assert.ok(row(last, "catalog").total > 0 && row(last, "ratings").total > 0);

    // Before the split: reviews balanced over every version. After: only v2.
    const before = history.filter((e) => e.at < splitAt).at(-1)!;
    assert.ok(
      row(before, "reviews/v1").total > 0 && row(before, "reviews/v3").total > 0,
      "all versions served before the split",
    );
    const settled = history.find((e) => e.at > splitAt + 1500)!;
    assert.ok(settled, "a summary after the split");
    assert.equal(
      row(last, "reviews/v1").total - row(settled, "reviews/v1").total,
      0,
      "v1 gets nothing after the split",
    );
    assert.equal(
      row(last, "reviews/v3").total - row(settled, "reviews/v3").total,
      0,
      "v3 gets nothing after the split",
    );
    assert.ok(
      row(last, "reviews/v2").total - row(settled, "reviews/v2").total > 10,
      "v2 serves everything after the split",
    );
    // ratings answers 503 to everything now; reviews v2 shows its page without stars, so its callers
    // (the storefront) see no failure.
    assert.ok(row(last, "ratings").success! < 0.7, `ratings success ${row(last, "ratings").success}`);
    assert.ok(
      row(last, "ratings").callers! < 0.7,
      `ratings as its callers saw it ${row(last, "ratings").callers}`,
    );
    assert.ok(
      row(last, "reviews").callers! > 0.9,
      `reviews as the storefront saw it ${row(last, "reviews").callers}`,
    );

    await assertNothingLeft(run);
  },
);

test(
  "WEFT_DEMO_DURATION_MS stops the demo by itself, exit code 0, nothing left",
  { timeout: 90_000 },
  async (t) => {
    const run = await startDemo({ WEFT_DEMO_DURATION_MS: "3000", WEFT_DEMO_QUIET: "1" });
    t.after(() => rm(run.dir, { recursive: true, force: true }));
    const code = await Promise.race([
      run.exit,
      new Promise((r) => setTimeout(() => r("timeout"), 75_000).unref()),
    ]);
    run.signal("SIGKILL");
    assert.equal(code, 0, run.output());
    assert.match(run.output(), /ran for 3000 ms, stopping/);
    assert.doesNotMatch(run.output(), /SERVICE +REQ\/S/, "quiet: no table");
    await assertNothingLeft(run);
  },
);

test(
  "a child that dies is named, the rest is stopped, exit code 1, nothing left",
  { timeout: 90_000 },
  async (t) => {
    const run = await startDemo({ WEFT_DEMO_DURATION_MS: "60000", WEFT_DEMO_QUIET: "1" });
    t.after(() => rm(run.dir, { recursive: true, force: true }));
    let victim: { pid: number; appPid: number };
    try {
      await run.waitFor("the mesh is up", 60_000);
      const state = JSON.parse(await readFile(join(run.dir, ".weft/demo-logs/state.json"), "utf8"));
      victim = state.workloads.find((w: { name: string }) => w.name === "catalog");
      process.kill(victim.pid, "SIGKILL"); // its app is left without its `weft run`
      assert.equal(await run.exit, 1, run.output());
    } finally {
      run.signal("SIGKILL");
    }
    assert.match(
      run.output(),
      new RegExp(`catalog \\(pid ${victim.pid}\\) exited unexpectedly \\(SIGKILL\\); stopping the demo`),
    );
    assert.match(run.output(), /--- last lines of \.weft\/demo-logs\/catalog\.log ---/);
    assert.ok(!isAlive(victim.appPid), "the orphaned catalog app is gone too");
    await assertNothingLeft(run);
  },
);

test("a busy control-plane port fails fast, saying what to stop", async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
  const port = (blocker.address() as { port: number }).port;
  try {
    const run = await startDemo({ WEFT_DEMO_CP_PORT: String(port) });
    assert.equal(await run.exit, 1);
    assert.match(run.output(), new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
    assert.match(run.output(), /Another `weft demo` or `weft control-plane` is probably running: stop it/);
    assert.deepEqual(await processesWithMarker(run.marker), []);
    await rm(run.dir, { recursive: true, force: true });
  } finally {
    blocker.close();
  }
});
