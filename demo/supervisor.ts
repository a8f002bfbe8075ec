// Starts the demo's child processes, each in its own process group with its output in a log file, and
// stops them: SIGTERM, wait, then SIGKILL whatever is still there. A child that exits while nobody
// asked it to is reported through `onUnexpectedExit`.
//
// Own process groups, so a Ctrl-C on the terminal reaches only the demo, which then stops the
// children in order (sidecars before the control plane) instead of all of them at once.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";

export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** stdout and stderr go here (truncated at start). */
  logFile: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Supervised {
  name: string;
  pid: number;
  logFile: string;
  process: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<ExitStatus>;
  /** Set once it exited. */
  status?: ExitStatus;
  /** Set once stop() was asked for it: its exit is then expected. */
  stopping: boolean;
}

export class Supervisor {
  readonly children: Supervised[] = [];
  onUnexpectedExit: (child: Supervised, status: ExitStatus) => void = () => {};
  private readonly killOnExit = () => this.killAllNow();

  constructor() {
    // Last resort if the demo itself dies abruptly: take the children along.
    process.once("exit", this.killOnExit);
  }

  start(spec: ChildSpec): Supervised {
    const fd = openSync(spec.logFile, "w");
    writeSync(fd, `# ${new Date().toISOString()} ${spec.command} ${spec.args.join(" ")}\n`);
    let proc: ChildProcess;
    try {
      proc = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        stdio: ["ignore", fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd); // the child has its own copy
    }
    if (proc.pid === undefined) {
      proc.once("error", () => {}); // reported by the throw below
      throw new Error(`cannot start ${spec.name} (${spec.command})`);
    }
    const child: Supervised = {
      name: spec.name,
      pid: proc.pid,
      logFile: spec.logFile,
      process: proc,
      stopping: false,
      exited: undefined!,
    };
    child.exited = new Promise<ExitStatus>((resolve) => {
      const finish = (status: ExitStatus) => {
        if (child.status) return;
        child.status = status;
        resolve(status);
      };
      proc.once("error", () => finish({ code: 127, signal: null }));
      proc.once("exit", (code, signal) => finish({ code, signal }));
    });
    void child.exited.then((status) => {
      if (!child.stopping) this.onUnexpectedExit(child, status);
    });
    this.children.push(child);
    return child;
  }

  /** Stops these children (in parallel): SIGTERM to each process group, SIGKILL after `graceMs`. */
  async stop(children: Supervised[], graceMs = 5000): Promise<{ killed: string[] }> {
    const killed: string[] = [];
    await Promise.all(
      children.map(async (c) => {
        c.stopping = true;
        if (c.status) return;
        signalGroup(c.pid, "SIGTERM");
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          c.exited.then(() => false),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          killed.push(c.name);
          signalGroup(c.pid, "SIGKILL");
          await c.exited;
        }
      }),
    );
    return { killed };
  }

  /** Children that have not exited yet. */
  running(): Supervised[] {
    return this.children.filter((c) => !c.status);
  }

  /** SIGKILL every running child's group, synchronously (for the process' exit). */
  killAllNow(): void {
    for (const c of this.running()) {
      c.stopping = true;
      signalGroup(c.pid, "SIGKILL");
    }
  }

  dispose(): void {
    process.off("exit", this.killOnExit);
  }
}

/** Signals a process group (the child is its leader), falling back to the process alone. */
export function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** Whether a process with this pid exists. */
/** True while the process runs; a zombie (exited, not yet reaped by its new parent) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ..." — the state letter follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc (not Linux): kill(0) succeeding is all we know
  }
}

/** Waits until none of `pids` is alive, SIGKILLing the survivors after `graceMs`. Returns those killed. */
export async function reapPids(pids: number[], graceMs = 2000): Promise<number[]> {
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const survivors = pids.filter(isAlive);
  for (const pid of survivors) signalGroup(pid, "SIGKILL");
  return survivors;
}
