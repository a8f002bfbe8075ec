// The demo's control plane: `weft control-plane --data-dir .weft` as a child process, up once its
// /healthz answers over TLS verified with the mesh CA from the config it writes; then the demo's
// resources (demo/mesh/) applied with `weft apply`.

import { readFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import type { CliConfig } from "../src/client/cli-config.ts";
import { assertPortFree } from "./ports.ts";
import type { Supervised, Supervisor } from "./supervisor.ts";
import { DEMO_DIR, logTail, runWeft, sleep, weftCommand, type WeftEnv } from "./weft-cli.ts";

export interface DemoControlPlane {
  child: Supervised;
  url: string;
  config: CliConfig;
}

export async function startControlPlane(
  sup: Supervisor,
  w: WeftEnv,
  opts: { apiPort: number; streamPort: number; logFile: string; timeoutMs?: number },
): Promise<DemoControlPlane> {
  await assertPortFree(opts.apiPort, "control plane (config API)", "WEFT_DEMO_CP_PORT");
  await assertPortFree(opts.streamPort, "control plane (proxy config stream)", "WEFT_DEMO_STREAM_PORT");
  const [cmd, args] = weftCommand([
    "control-plane",
    "--data-dir",
    w.dataDir,
    "--listen",
    `127.0.0.1:${opts.apiPort}`,
    "--stream-listen",
    `127.0.0.1:${opts.streamPort}`,
  ]);
  const child = sup.start({
    name: "control-plane",
    command: cmd,
    args,
    cwd: w.cwd,
    env: w.env,
    logFile: opts.logFile,
  });
  const url = `https://127.0.0.1:${opts.apiPort}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (child.status) {
      throw new Error(
        `the control plane exited during start (code ${child.status.code}):\n${await logTail(opts.logFile)}`,
      );
    }
    const config = await readConfig(w.dataDir);
    if (config?.server === url) {
      try {
        await healthz(url, config.ca);
        return { child, url, config };
      } catch (err) {
        last = (err as Error).message;
      }
    }
    await sleep(100);
  }
  throw new Error(
    `the control plane did not become healthy at ${url}/healthz (${last}); see ${opts.logFile}`,
  );
}

async function readConfig(dataDir: string): Promise<CliConfig | undefined> {
  try {
    return JSON.parse(await readFile(join(dataDir, "config.json"), "utf8")) as CliConfig;
  } catch {
    return undefined; // not written yet, or being replaced
  }
}

function healthz(url: string, ca: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/healthz`, { ca, timeout: 1000 }, (res) => {
      res.resume();
      res.on("end", () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`/healthz answered ${res.statusCode}`)),
      );
    });
    req.on("timeout", () => req.destroy(new Error("/healthz timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** `weft apply -f demo/mesh/`; returns the lines it printed. */
export async function applyDemoResources(w: WeftEnv): Promise<string[]> {
  const out = await runWeft(w, ["apply", "-f", join(DEMO_DIR, "mesh")]);
  if (out.code !== 0)
    throw new Error(`weft apply -f demo/mesh/ failed (exit ${out.code}):\n${out.stderr.trim()}`);
  return out.stdout.trim().split("\n").filter(Boolean);
}

/** Names of the HTTPRoutes already stored (e.g. a `reviews` split left from an earlier run). */
export async function existingRoutes(w: WeftEnv): Promise<string[]> {
  const out = await runWeft(w, ["get", "httproutes", "-o", "json"]);
  if (out.code !== 0) return [];
  try {
    return (JSON.parse(out.stdout) as { items: { metadata: { name: string } }[] }).items.map(
      (i) => i.metadata.name,
    );
  } catch {
    return [];
  }
}
