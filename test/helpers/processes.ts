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
  /** Signals the process and waits for it to exit; fails (after SIGKILL) if it takes too long. */
  stop(signal?: NodeJS.Signals, withinMs?: number): Promise<void>;
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
    async stop(signal = "SIGTERM", withinMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), withinMs)));
      const outcome = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (outcome === "late") {
        proc.kill("SIGKILL");
        await exited;
        throw new Error(`weft ${args[0]} did not exit within ${withinMs} ms of ${signal}:\n${out}`);
      }
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
    // A command that should have finished but hangs is a failure with its output, not a stuck test.
    const timer = setTimeout(() => {
      stderr += `\n[test helper: weft ${args.join(" ")} still running after 30 s; killed]`;
      proc.kill("SIGKILL");
    }, 30_000);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      children.delete(proc);
      resolveRun({ code: code ?? -1, stdout, stderr });
    });
    proc.stdin.end(input ?? "");
  });
}
