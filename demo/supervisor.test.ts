import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { isAlive, reapPids, Supervisor, type ExitStatus, type Supervised } from "./supervisor.ts";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-demo-sup-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function nodeChild(sup: Supervisor, name: string, script: string): Supervised {
  return sup.start({
    name,
    command: process.execPath,
    args: ["-e", script],
    cwd: dir,
    env: process.env,
    logFile: join(dir, `${name}.log`),
  });
}

// Split strings, so the log's header line (the command) does not already contain what the child prints.
const READY = "console.log('rea' + 'dy'); process.stderr.write('to ' + 'stderr\\n');";

async function waitForLog(file: string, text: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await readFile(file, "utf8").catch(() => "")).includes(text)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${file} never said ${text}`);
}

test("stop: SIGTERM to a child that exits on it; output went to its log", async () => {
  const sup = new Supervisor();
  const c = nodeChild(sup, "polite", `${READY} setInterval(() => {}, 1000);`);
  await waitForLog(c.logFile, "to stderr\n");
  const { killed } = await sup.stop([c], 2000);
  assert.deepEqual(killed, []);
  assert.equal(c.status?.signal, "SIGTERM");
  const log = await readFile(c.logFile, "utf8");
  assert.match(log, /^# .* -e /);
  assert.match(log, /ready\nto stderr\n/);
  sup.dispose();
});

test("stop: SIGKILL after the grace period for a child that ignores SIGTERM", async () => {
  const sup = new Supervisor();
  const c = nodeChild(
    sup,
    "stubborn",
    `process.on('SIGTERM', () => {}); ${READY} setInterval(() => {}, 1000);`,
  );
  await waitForLog(c.logFile, "ready\n");
  const started = Date.now();
  const { killed } = await sup.stop([c], 300);
  assert.deepEqual(killed, ["stubborn"]);
  assert.equal(c.status?.signal, "SIGKILL");
  assert.ok(Date.now() - started >= 300);
  assert.ok(!isAlive(c.pid));
  sup.dispose();
});

test("a child that exits by itself is reported; a stopped one is not", async () => {
  const sup = new Supervisor();
  const reported: [string, ExitStatus][] = [];
  sup.onUnexpectedExit = (c, s) => reported.push([c.name, s]);
  const crash = nodeChild(sup, "crash", "process.exit(3)");
  const calm = nodeChild(sup, "calm", "setInterval(() => {}, 1000)");
  await crash.exited;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(reported, [["crash", { code: 3, signal: null }]]);
  await sup.stop(sup.running(), 2000);
  await new Promise((r) => setImmediate(r));
  assert.equal(reported.length, 1);
  assert.ok(calm.status);
  assert.deepEqual(sup.running(), []);
  sup.dispose();
});

test("reapPids kills what does not go away by itself", async () => {
  const sup = new Supervisor();
  const c = nodeChild(
    sup,
    "lingering",
    `process.on('SIGTERM', () => {}); ${READY} setInterval(() => {}, 1000);`,
  );
  c.stopping = true;
  await waitForLog(c.logFile, "ready\n");
  const survivors = await reapPids([c.pid], 200);
  assert.deepEqual(survivors, [c.pid]);
  await c.exited;
  assert.ok(!isAlive(c.pid));
  sup.dispose();
});
