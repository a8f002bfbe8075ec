// Processes for the benchmark: spawning pinned to a core (taskset execs, so the child's pid is the
// command's pid), waiting for a line of output, stopping, and reading CPU time and memory from /proc.

import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";

export interface Child {
  name: string;
  pid: number;
  proc: ChildProcess;
  /** Everything the process printed so far (stdout and stderr, interleaved). */
  output(): string;
  /** Resolves with the first match of `re` in the output; rejects on exit or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

const running = new Set<Child>();

/** Starts `cmd args` pinned to `core` (taskset -c). */
export function spawnPinned(
  name: string,
  core: number,
  cmd: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): Child {
  const proc = spawn("taskset", ["-c", String(core), cmd, ...args], {
    env: env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (proc.pid === undefined) throw new Error(`${name}: could not spawn ${cmd}`);
  let out = "";
  const waiters: (() => void)[] = [];
  const onData = (chunk: Buffer) => {
    out += chunk.toString("utf8");
    if (out.length > 1_000_000) out = out.slice(-500_000);
    for (const w of [...waiters]) w();
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const child: Child = {
    name,
    pid: proc.pid,
    proc,
    output: () => out,
    exited,
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re);
          if (!m) return;
          finish();
          resolve(m);
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${name}: no ${re} within ${timeoutMs} ms; output:\n${out.slice(-2000)}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          const i = waiters.indexOf(check);
          if (i >= 0) waiters.splice(i, 1);
        };
        waiters.push(check);
        exited.then((code) => {
          if (!waiters.includes(check)) return;
          finish();
          reject(new Error(`${name}: exited (${code}) before printing ${re}; output:\n${out.slice(-2000)}`));
        });
        check();
      });
    },
    async stop() {
      running.delete(child);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const t0 = performance.now();
      const killer = setTimeout(() => proc.kill("SIGKILL"), stopGraceMs);
      await exited;
      clearTimeout(killer);
      if (stopGraceMs > 3000)
        process.stderr.write(
          `bench: ${name} exited ${Math.round(performance.now() - t0)} ms after SIGTERM\n`,
        );
    },
  };
  running.add(child);
  exited.then(() => running.delete(child));
  return child;
}

let stopGraceMs = 3000;
/** How long stop() waits after SIGTERM before SIGKILL (longer when sidecars write CPU profiles on exit). */
export function setStopGrace(ms: number): void {
  stopGraceMs = ms;
}

/** Stops every child still running (on exit or interruption). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
}

/** Runs a command to completion, killing it after `timeoutMs`. */
export function runToEnd(
  core: number,
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string }> {
  const child = spawnPinned(cmd, core, cmd, args);
  const timer = setTimeout(() => child.proc.kill("SIGKILL"), timeoutMs);
  return child.exited.then((code) => {
    clearTimeout(timer);
    return { code, out: child.output() };
  });
}

/** The pid and all its descendants (found by scanning /proc for parent pids). */
export function processTree(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const ppid = Number(stat[1]);
    const list = parents.get(ppid) ?? [];
    list.push(Number(entry));
    parents.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(parents.get(p) ?? []));
  }
  return out;
}

/** Fields of /proc/<pid>/stat after the command name: [0] is field 3 (state), [1] ppid, … */
function readStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

const TICK_US = 1_000_000 / 100; // CLK_TCK is 100 on Linux x86-64

/** utime + stime of the processes, in µs (10 ms resolution). */
export function cpuMicros(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = readStat(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]); // fields 14 and 15
  }
  return ticks * TICK_US;
}

/** VmRSS and VmHWM summed over the processes, in kB. */
export function memoryKb(pids: number[]): { rss: number; hwm: number } {
  let rss = 0;
  let hwm = 0;
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/status`, "utf8");
    } catch {
      continue;
    }
    rss += Number(text.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? 0);
    hwm += Number(text.match(/^VmHWM:\s+(\d+)/m)?.[1] ?? 0);
  }
  return { rss, hwm };
}

export interface CoreTimes {
  busy: number;
  idle: number;
  steal: number;
}

/** Per-core jiffies from /proc/stat: busy (user+nice+system+irq+softirq), idle (+iowait), steal. */
export function coreTimes(): CoreTimes[] {
  const out: CoreTimes[] = [];
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    const m = line.match(/^cpu(\d+) (.*)$/);
    if (!m) continue;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = m[2].split(" ").map(Number);
    out[Number(m[1])] = { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
  }
  return out;
}

/** Fraction of each core's time that was busy (and stolen) between two readings. */
export function coreLoad(a: CoreTimes[], b: CoreTimes[]): { busy: number; steal: number }[] {
  return b.map((t, i) => {
    const busy = t.busy - a[i].busy;
    const steal = t.steal - a[i].steal;
    const total = busy + steal + (t.idle - a[i].idle);
    return { busy: total ? busy / total : 0, steal: total ? steal / total : 0 };
  });
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
