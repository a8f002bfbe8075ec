// A fleet (fleet.ts) in a process of its own, driven over the IPC channel: the run spreads its
// proxies over a few of these, pinned to the simulator's core, so that thousands of TLS streams and
// their snapshots are not all in one heap. `WorkerFleet` is the parent's end: the same FleetHandle as
// an in-process Fleet. Each request carries an id and gets exactly one reply with it.
//
//   (run by WorkerFleet) taskset -c CORE node bench/control-plane/fleet-worker.ts

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Fleet, type FleetHandle, type FleetStats, type Watch } from "./fleet.ts";
import type { ControlPlaneTarget, SimProxySpec } from "./sim-proxy.ts";

type Request =
  | { op: "start"; cp: ControlPlaneTarget; specs: SimProxySpec[] }
  | { op: "watch"; w: Watch }
  | { op: "stats"; withSizes: boolean }
  | { op: "leave"; services: string[] }
  | { op: "stop" };

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export class WorkerFleet implements FleetHandle {
  readonly #proc: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 0;
  #exited: Promise<void>;
  #stderr = "";

  constructor(core: number, heapMb: number) {
    const args = [`--max-old-space-size=${heapMb}`, fileURLToPath(import.meta.url)];
    this.#proc = spawn("taskset", ["-c", String(core), process.execPath, ...args], {
      stdio: ["ignore", "inherit", "pipe", "ipc"],
    });
    this.#proc.stderr!.on("data", (c: Buffer) => {
      this.#stderr = (this.#stderr + c.toString("utf8")).slice(-4000);
    });
    this.#proc.on("message", (m: Reply) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(m.error));
    });
    this.#exited = new Promise((resolve) =>
      this.#proc.once("exit", (code, signal) => {
        const why = new Error(`fleet worker exited (${code ?? signal}): ${this.#stderr.trim().slice(-1000)}`);
        for (const p of this.#pending.values()) p.reject(why);
        this.#pending.clear();
        resolve();
      }),
    );
  }

  get pid(): number {
    return this.#proc.pid ?? 0;
  }

  #call<T>(req: Request): Promise<T> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null)
      return Promise.reject(new Error(`fleet worker has exited: ${this.#stderr.trim().slice(-1000)}`));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#proc.send({ id, ...req });
    });
  }

  start(cp: ControlPlaneTarget, specs: SimProxySpec[]): Promise<void> {
    return this.#call({ op: "start", cp, specs });
  }

  watch(w: Watch): Promise<void> {
    return this.#call({ op: "watch", w });
  }

  stats(withSizes = false): Promise<FleetStats> {
    return this.#call({ op: "stats", withSizes });
  }

  leave(services: string[]): Promise<number> {
    return this.#call({ op: "leave", services });
  }

  async stop(): Promise<void> {
    const killer = setTimeout(() => this.#proc.kill("SIGKILL"), 5000);
    try {
      await this.#call({ op: "stop" });
    } catch {
      // Already gone: nothing to stop.
    }
    this.#proc.disconnect?.();
    await this.#exited;
    clearTimeout(killer);
  }
}

/** The worker's side: serves one Fleet until asked to stop or the parent goes away. */
function serve(): void {
  const fleet = new Fleet();
  const reply = (r: Reply) => process.send?.(r);
  process.on("message", (m: Request & { id: number }) => {
    const run = async (): Promise<unknown> => {
      switch (m.op) {
        case "start":
          return fleet.start(m.cp, m.specs);
        case "watch":
          return fleet.watch(m.w);
        case "stats":
          return fleet.stats(m.withSizes);
        case "leave":
          return fleet.leave(m.services);
        case "stop":
          await fleet.stop();
          return undefined;
      }
    };
    run().then(
      (value) => {
        if (m.op !== "stop") return reply({ id: m.id, ok: true, value });
        process.send?.({ id: m.id, ok: true }, () => process.exit(0));
      },
      (err: Error) => reply({ id: m.id, ok: false, error: err.message }),
    );
  });
  // The run died: do not outlive it holding thousands of streams.
  process.on("disconnect", () => process.exit(0));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve();
