// Stopping the demo: why (a signal, the time limit, a child that died), and in which order — the
// traffic first, then every service's `weft run` (each stops its app and drains its sidecar), then
// the apps are checked gone, then the control plane. Anything that outstays its grace period is killed.

import type { Supervised, Supervisor } from "./supervisor.ts";
import { reapPids } from "./supervisor.ts";
import type { RunningWorkload } from "./workloads.ts";

export interface StopReason {
  code: number;
  message: string;
  /** The child whose unexpected exit caused the stop. */
  failed?: Supervised;
}

/** Thrown out of a startup step when a stop was requested meanwhile. */
export class Stopped extends Error {}

/** A one-shot stop request that startup steps and the live loop can wait on. */
export class StopSignal {
  reason?: StopReason;
  readonly promise: Promise<StopReason>;
  private resolve!: (r: StopReason) => void;

  constructor() {
    this.promise = new Promise((r) => (this.resolve = r));
  }

  get requested(): boolean {
    return this.reason !== undefined;
  }

  /** The first request wins; later ones are ignored. */
  request(reason: StopReason): void {
    if (this.reason) return;
    this.reason = reason;
    this.resolve(reason);
  }

  /** `step`, unless a stop is requested first (then throws Stopped). */
  race<T>(step: Promise<T>): Promise<T> {
    return Promise.race([
      step,
      this.promise.then((): never => {
        throw new Stopped();
      }),
    ]);
  }
}

export interface ShutdownReport {
  /** Children that had to be SIGKILLed. */
  killed: string[];
  stopped: number;
}

/** Stops everything the demo started, in order; resolves once no demo process is left. */
export async function shutdown(
  sup: Supervisor,
  workloads: RunningWorkload[],
  controlPlane: Supervised | undefined,
  say: (line: string) => void,
  graceMs = 5000,
): Promise<ShutdownReport> {
  const killed: string[] = [];
  const count = sup.running().length;
  const traffic = workloads.filter((w) => w.spec.name === "traffic").map((w) => w.child);
  const services = workloads.filter((w) => w.spec.name !== "traffic").map((w) => w.child);

  if (traffic.some((c) => !c.status)) say("  stopping traffic");
  killed.push(...(await sup.stop(traffic, graceMs)).killed);
  if (services.some((c) => !c.status)) say(`  stopping ${services.length} services and their sidecars`);
  killed.push(...(await sup.stop(services, graceMs)).killed);

  // `weft run` stops its app before it exits, but an app whose `weft run` was killed would be left
  // over (it also notices that on its own, within half a second).
  const appPids = workloads.map((w) => w.appPid).filter((p): p is number => p !== undefined);
  const leftover = await reapPids(appPids, 2000);
  for (const pid of leftover) killed.push(`app pid ${pid}`);

  if (controlPlane && !controlPlane.status) say("  stopping the control plane");
  if (controlPlane) killed.push(...(await sup.stop([controlPlane], graceMs)).killed);
  // Nothing else should be running; make sure.
  killed.push(...(await sup.stop(sup.running(), graceMs)).killed);
  return { killed, stopped: count };
}
