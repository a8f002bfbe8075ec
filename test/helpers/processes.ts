// Real weft processes for end-to-end tests: control plane, proxies and `weft run`, each on port 0,
// all killed when the test file ends.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after } from "node:test";

export const ROOT = resolve(import.meta.dirname, "../..");
export const WEFT = join(ROOT, "bin", "weft.js");
const children = new Set<ChildProcess>();

// SIGTERM first, so that `weft run` takes its app down with it; SIGKILL what is still there after 2 s.
after(async () => {
  const live = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of live) c.kill("SIGTERM");
  await Promise.race([
    Promise.all(live.map((c) => new Promise((r) => c.once("exit", r)))),
    new Promise((r) => setTimeout(r, 2000).unref()),
  ]);
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

export function tempDir(prefix = "weft-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Spawned {
  proc: ChildProcess;
  output: () => string;
  /** Resolves with the first match of `re` in stdout+stderr (rejects if the process exits first). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnWeft(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Spawned {
  const proc = spawn(process.execPath, [WEFT, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(proc);
  let out = "";
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.on("exit", (code, signal) => {
      children.delete(proc);
      for (const w of waiters) w();
      r({ code, signal });
    }),
  );
  return {
    proc,
    output: () => out,
    exited,
    waitFor(re, timeoutMs = 15_000) {
      return new Promise((resolveMatch, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) return done(() => resolveMatch(m));
          if (proc.exitCode !== null || proc.signalCode !== null)
            return done(() =>
              reject(
                new Error(
                  `weft ${args[0]} exited (${proc.exitCode ?? proc.signalCode}) before ${re}:\n${out}`,
                ),
              ),
            );
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`timed out waiting for ${re}; output:\n${out}`))),
          timeoutMs,
        );
        const done = (fn: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          fn();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

/** Runs the CLI to completion. */
export function weft(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const proc = spawn(process.execPath, [WEFT, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    children.add(proc);
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d) => (stdout += d));
    proc.stderr.on("data", (d) => (stderr += d));
    proc.on("exit", (code) => {
      children.delete(proc);
      resolveRun({ code: code ?? -1, stdout, stderr });
    });
    proc.stdin.end(input ?? "");
  });
}
