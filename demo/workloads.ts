// The demo's workloads and how each starts: `weft run --service NAME --port APP_PORT --label
// version=vN ... -- node demo/apps/NAME.ts`, on ports the OS says are free. `weft run` starts the app
// once its sidecar is ready; the demo then waits for the app's /healthz, which also tells it the
// app's pid (the app runs in its own process group, so the demo checks it is gone at the end).

import { get } from "node:http";
import { join } from "node:path";
import { freePorts } from "./ports.ts";
import type { Supervised, Supervisor } from "./supervisor.ts";
import { appFile, logTail, sleep, weftCommand, type WeftEnv } from "./weft-cli.ts";

export interface WorkloadSpec {
  /** Unique: log file name, summary row name. */
  name: string;
  service: string;
  version: string;
  /** The app under demo/apps/ (without extension) and its arguments. */
  app: string;
  args?: string[];
}

/** The services, leaves first. */
export const SERVICES: WorkloadSpec[] = [
  { name: "storefront", service: "storefront", version: "v1", app: "storefront" },
  { name: "catalog", service: "catalog", version: "v1", app: "catalog" },
  { name: "reviews-v1", service: "reviews", version: "v1", app: "reviews", args: ["v1"] },
  { name: "reviews-v2", service: "reviews", version: "v2", app: "reviews", args: ["v2"] },
  { name: "reviews-v3", service: "reviews", version: "v3", app: "reviews", args: ["v3"] },
  { name: "ratings", service: "ratings", version: "v1", app: "ratings" },
];

export const TRAFFIC: WorkloadSpec = {
  name: "traffic",
  service: "traffic",
  version: "v1",
  app: "traffic",
};

export interface Ports {
  app: number;
  inbound: number;
  outbound: number;
  admin: number;
}

export interface RunningWorkload {
  spec: WorkloadSpec;
  ports: Ports;
  child: Supervised;
  /** The app's own pid, once its /healthz answered. */
  appPid?: number;
}

export async function allocatePorts(count: number): Promise<Ports[]> {
  const p = await freePorts(count * 4);
  return Array.from({ length: count }, (_, i) => ({
    app: p[4 * i],
    inbound: p[4 * i + 1],
    outbound: p[4 * i + 2],
    admin: p[4 * i + 3],
  }));
}

/** The `weft run` arguments for one workload (what a user would type, with absolute paths). */
export function runArgs(spec: WorkloadSpec, ports: Ports): string[] {
  return [
    "run",
    "--service",
    spec.service,
    "--port",
    String(ports.app),
    "--label",
    `version=${spec.version}`,
    "--inbound-port",
    String(ports.inbound),
    "--outbound-port",
    String(ports.outbound),
    "--admin-port",
    String(ports.admin),
    "--",
    process.execPath,
    appFile(spec.app),
    ...(spec.args ?? []),
  ];
}

export function startWorkload(
  sup: Supervisor,
  w: WeftEnv,
  spec: WorkloadSpec,
  ports: Ports,
  logsDir: string,
): RunningWorkload {
  const [cmd, args] = weftCommand(runArgs(spec, ports));
  const child = sup.start({
    name: spec.name,
    command: cmd,
    args,
    cwd: w.cwd,
    env: w.env,
    logFile: join(logsDir, `${spec.name}.log`),
  });
  return { spec, ports, child };
}

/** Waits until the app answers GET /healthz on its port; fails early if `weft run` exits. */
export async function waitHealthy(wl: RunningWorkload, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (wl.child.status) {
      const { code, signal } = wl.child.status;
      throw new Error(
        `${wl.spec.name} (weft run) exited during start (${signal ?? `code ${code}`}):\n${await logTail(wl.child.logFile)}`,
      );
    }
    try {
      const health = (await getJson(wl.ports.app, "/healthz")) as { pid?: number };
      wl.appPid = health.pid;
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(
    `${wl.spec.name} did not become healthy in ${timeoutMs / 1000} s (${last}); see ${wl.child.logFile}`,
  );
}

function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = get({ host: "127.0.0.1", port, path, timeout: 1000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`${path} answered ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${path} timed out`)));
    req.on("error", reject);
  });
}
