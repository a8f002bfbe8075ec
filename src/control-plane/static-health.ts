// Active health checks of Workloads that have no sidecar (static Workloads, applied with `weft
// apply`: an external database, a legacy VM). A sidecar checks its own app and reports (see
// src/proxy/agent/health-check.ts); nothing does that for a static endpoint, so the control plane
// probes it itself, with the health check of the TrafficPolicy targeting its Service, and records
// the result as the Workload's status — the same status a sidecar's report writes, so the compiler
// leaves an unhealthy static endpoint out of every proxy's config the same way.
//
// One checker per (workload, check settings); they follow the mesh state as it changes. The status
// is written with a compare on the Workload's revision, so a concurrent `weft apply` of the same
// Workload is never overwritten (the next probe result is written on top of it instead).

import type { HealthCheck } from "../model/snapshot.ts";
import { resourceKey, type Workload, type WorkloadStatus } from "../model/resources.ts";
import { HealthChecker, probeFor, type Timers } from "../proxy/agent/health-check.ts";
import type { Store } from "../store/store.ts";
import { healthCheck, policyIndex } from "./compile/traffic.ts";
import type { MeshStateCache } from "./mesh-state.ts";
import { decodeResource } from "./mesh-state.ts";

/** How long changes are gathered before the probed set is brought up to date (ms). */
const SYNC_DEBOUNCE_MS = 100;

interface Running {
  checker: HealthChecker;
  settings: string;
}

export interface StaticHealthOptions {
  store: Store;
  state: MeshStateCache;
  timers?: Timers;
  log?: (msg: string) => void;
}

export class StaticHealth {
  readonly #opts: StaticHealthOptions;
  readonly #running = new Map<string, Running>();
  #unsubscribe: (() => void) | undefined;
  #pending: NodeJS.Timeout | undefined;

  constructor(opts: StaticHealthOptions) {
    this.#opts = opts;
  }

  start(): void {
    this.#sync();
    // Changes come in bursts (a start storm is thousands of registrations) and a sync walks every
    // Workload: one sync per burst, not one per change.
    this.#unsubscribe = this.#opts.state.onChange(() => {
      this.#pending ??= setTimeout(() => {
        this.#pending = undefined;
        this.#sync();
      }, SYNC_DEBOUNCE_MS);
    });
  }

  stop(): void {
    clearTimeout(this.#pending);
    this.#pending = undefined;
    this.#unsubscribe?.();
    for (const r of this.#running.values()) r.checker.stop();
    this.#running.clear();
  }

  /** Workloads being probed, by store key (for tests and diagnostics). */
  get probing(): string[] {
    return [...this.#running.keys()];
  }

  #sync(): void {
    const state = this.#opts.state.state();
    const policies = policyIndex(state.trafficPolicies);
    const wanted = new Map<string, { w: Workload; check: HealthCheck }>();
    for (const w of state.workloads) {
      if (w.spec.identity) continue; // a sidecar fronts it and checks it
      const tp = policies.get(`${w.spec.service}.${w.metadata.namespace}`);
      const check = tp && healthCheck(tp);
      if (check) wanted.set(resourceKey("Workload", w.metadata.namespace, w.metadata.name), { w, check });
    }
    for (const [key, r] of this.#running) {
      const want = wanted.get(key);
      if (!want || settingsOf(want.w, want.check) !== r.settings) {
        r.checker.stop();
        this.#running.delete(key);
      }
    }
    for (const [key, { w, check }] of wanted) {
      if (this.#running.has(key)) continue;
      const current = w.status as WorkloadStatus | undefined;
      const checker = new HealthChecker({
        probe: probeFor(check, w.spec.address, w.spec.port),
        intervalMs: check.intervalMs,
        healthyThreshold: check.healthyThreshold,
        unhealthyThreshold: check.unhealthyThreshold,
        // Continue from the recorded state (a restarted control plane must not readmit a bad endpoint).
        initialHealthy: current?.health !== "Unhealthy",
        timers: this.#opts.timers,
        onChange: (healthy, detail) => void this.#record(key, healthy, detail),
      });
      this.#running.set(key, { checker, settings: settingsOf(w, check) });
      checker.start();
    }
  }

  async #record(key: string, healthy: boolean, detail: string): Promise<void> {
    const { store } = this.#opts;
    for (let attempt = 0; attempt < 3; attempt++) {
      const kv = await store.get(key);
      if (!kv || !this.#running.has(key)) return;
      const w = decodeResource(kv.value, kv.modRevision) as Workload;
      delete w.metadata.resourceVersion;
      const status: WorkloadStatus = {
        health: healthy ? "Healthy" : "Unhealthy",
        detail: `checked by the control plane: ${detail}`,
        since: new Date().toISOString(),
      };
      const res = await store.txn({
        compares: [{ key, target: "modRevision", op: "=", value: kv.modRevision }],
        success: [{ type: "put", key, value: JSON.stringify({ ...w, status }) }],
      });
      if (res.succeeded) return;
    }
    this.#opts.log?.(`weft control-plane: could not record the health of ${key} (kept changing)`);
  }
}

/** What a checker depends on: a change means a new checker. */
function settingsOf(w: Workload, check: HealthCheck): string {
  return JSON.stringify([w.spec.address, w.spec.port, check]);
}
