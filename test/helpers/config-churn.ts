// Config churn against real processes: a control plane and one sidecar (reaching every service), both
// with heap-probe.ts preloaded. Applies N Services in one apply, waits until the sidecar runs them,
// deletes them one by one through the config API, waits until the sidecar's config is back to its
// start, and samples both processes' memory (after GC) at each stage. Used by the churn test (small N)
// and bench/config-churn.ts (any N).

import { join } from "node:path";
import { callApi, type ApiTarget } from "../../src/client/api-client.ts";
import { httpGet, readConfig, startControlPlane, startProxy, waitUntil } from "./mesh.ts";
import { ROOT, type Spawned } from "./processes.ts";

export interface HeapSample {
  heapUsed: number;
  heapTotal: number;
  rss: number;
  external: number;
}

export interface ChurnResult {
  n: number;
  /** At start, with N services applied, half-way through the deletes, and after them. */
  cp: Stages;
  sidecar: Stages;
  /** Sidecar /config size (bytes) at each stage. */
  configBytes: { start: number; loaded: number; end: number };
  applyMs: number;
  deleteMs: number;
  /** From the last delete until the sidecar's config no longer had any of the services. */
  catchUpMs: number;
}

export interface Stages {
  start: HeapSample;
  loaded: HeapSample;
  mid: HeapSample;
  end: HeapSample;
}

const PROBE = join(ROOT, "test", "helpers", "heap-probe.ts");
export const PROBE_ENV = { NODE_OPTIONS: `--expose-gc --import=${PROBE}` };

/** Asks a process started with PROBE_ENV for its memory after GC. */
export async function heapOf(p: Spawned): Promise<HeapSample> {
  const seen = p.output().match(/weft-heap \d+ /g)?.length ?? 0;
  p.proc.kill("SIGUSR2");
  const m = await p.waitFor(new RegExp(`weft-heap ${seen} (\\{[^\\n]*\\})`), 10_000);
  return JSON.parse(m[1]) as HeapSample;
}

export interface ChurnOptions {
  n: number;
  log?: (msg: string) => void;
  /** The sidecar's V8 old-space limit (MB), e.g. 64 to show that churn fits in a small heap. */
  sidecarHeapMb?: number;
  /** Where the control plane keeps its data (the caller removes it). */
  dataDir: string;
}

export async function runConfigChurn(opts: ChurnOptions): Promise<ChurnResult> {
  const { n } = opts;
  const log = opts.log ?? (() => {});
  const cp = await startControlPlane({ dataDir: opts.dataDir, env: PROBE_ENV });
  const heapFlag = opts.sidecarHeapMb ? ` --max-old-space-size=${opts.sidecarHeapMb}` : "";
  const sidecar = await startProxy(
    { ...cp, env: { ...cp.env, NODE_OPTIONS: PROBE_ENV.NODE_OPTIONS + heapFlag } },
    "observer",
    9,
    // The whole mesh up front (not on demand): the churn is of config the sidecar holds.
    ["--reach", "*"],
  );
  const conf = readConfig(cp);
  const api: ApiTarget = { server: conf.server, ca: conf.ca, token: conf.token };
  const services = async () => {
    const r = await httpGet(sidecar.adminPort, "/config");
    if (r.status !== 200) throw new Error(`sidecar /config answered ${r.status}`);
    const outbound = (JSON.parse(r.body) as { outbound: Record<string, unknown> }).outbound;
    return {
      count: Object.keys(outbound).filter((k) => k.startsWith("churn-")).length,
      bytes: r.body.length,
    };
  };
  // Let start-up garbage settle into the baseline.
  const startBytes = (await services()).bytes;
  const start = { cp: await heapOf(cp), sidecar: await heapOf(sidecar) };
  log(`start: ${describe(start)}`);

  const names = Array.from({ length: n }, (_, i) => `churn-${String(i).padStart(5, "0")}`);
  const yaml = names
    .map(
      (name) =>
        `apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: { name: ${name} }\nspec: { ports: [{ port: 8080, protocol: http }] }\n`,
    )
    .join("---\n");
  const applyStarted = Date.now();
  await callApi(api, "POST", "/api/v1/apply", yaml, 60_000);
  await waitUntil(async () => (await services()).count === n, 120_000, `sidecar runs ${n} services`).catch(
    (err: Error) => {
      throw new Error(
        `${err.message}\nsidecar:\n${sidecar.output().slice(-1500)}\ncontrol plane:\n${cp.output().slice(-1500)}`,
      );
    },
  );
  const applyMs = Date.now() - applyStarted;
  const loadedBytes = (await services()).bytes;
  const loaded = { cp: await heapOf(cp), sidecar: await heapOf(sidecar) };
  log(`${n} services applied in ${applyMs} ms: ${describe(loaded)}`);

  const deleteStarted = Date.now();
  let mid = loaded;
  for (const [i, name] of names.entries()) {
    await callApi(api, "DELETE", `/api/v1/resources/services/default/${name}`);
    if (i + 1 === Math.floor(n / 2)) {
      mid = { cp: await heapOf(cp), sidecar: await heapOf(sidecar) };
      log(`half deleted: ${describe(mid)}`);
    }
  }
  const lastDelete = Date.now();
  await waitUntil(async () => (await services()).count === 0, 120_000, "sidecar runs no churn services");
  const catchUpMs = Date.now() - lastDelete;
  const deleteMs = lastDelete - deleteStarted;
  const endBytes = (await services()).bytes;
  const end = { cp: await heapOf(cp), sidecar: await heapOf(sidecar) };
  log(`deleted one by one in ${deleteMs} ms, sidecar caught up ${catchUpMs} ms later: ${describe(end)}`);
  if (sidecar.proc.exitCode !== null || sidecar.proc.signalCode !== null)
    throw new Error(`the sidecar died:\n${sidecar.output().slice(-2000)}`);
  await sidecar.stop();
  await cp.stop();
  return {
    n,
    cp: { start: start.cp, loaded: loaded.cp, mid: mid.cp, end: end.cp },
    sidecar: { start: start.sidecar, loaded: loaded.sidecar, mid: mid.sidecar, end: end.sidecar },
    configBytes: { start: startBytes, loaded: loadedBytes, end: endBytes },
    applyMs,
    deleteMs,
    catchUpMs,
  };
}

export const mb = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MB`;

function describe(s: { cp: HeapSample; sidecar: HeapSample }): string {
  const one = (h: HeapSample) =>
    `heap ${mb(h.heapUsed)} of ${mb(h.heapTotal)}, external ${mb(h.external)}, rss ${mb(h.rss)}`;
  return `control plane ${one(s.cp)}; sidecar ${one(s.sidecar)}`;
}
