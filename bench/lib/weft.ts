// weft for the benchmark: a control plane in a temporary data dir, resources applied with the CLI, and
// sidecar proxies started with the Node 24 binary directly (pinned with taskset, so their pid is the
// proxy's), each timed from spawn to its first /ready 200.

import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { httpGet, waitForHttp } from "./http-check.ts";
import { freePort, spawnPinned, type Child } from "./proc.ts";

const ROOT = resolve(import.meta.dirname, "..", "..");
const WEFT = join(ROOT, "bin", "weft.js");
const run = promisify(execFile);

export interface Sidecar {
  child: Child;
  service: string;
  outboundPort: number;
  inboundPort: number;
  adminPort: number;
  startupMs: number;
  metrics(): Promise<string>;
}

export class WeftMesh {
  readonly controlPlane: Child;
  readonly configFile: string;
  private readonly dir: string;
  /** `--cpu-prof DIR`: each sidecar writes a V8 CPU profile there when it stops (drain delay 0). */
  cpuProfDir?: string;

  private constructor(controlPlane: Child, configFile: string, dir: string) {
    this.controlPlane = controlPlane;
    this.configFile = configFile;
    this.dir = dir;
  }

  /** Starts a control plane on `core`, with its data in `workDir`/weft (`nodeArgs`: e.g. --cpu-prof). */
  static async start(workDir: string, core: number, nodeArgs: string[] = []): Promise<WeftMesh> {
    const dir = join(workDir, "weft");
    mkdirSync(dir, { recursive: true });
    const cp = spawnPinned("weft control-plane", core, process.execPath, [
      ...nodeArgs,
      WEFT,
      "control-plane",
      "--data-dir",
      join(dir, "data"),
      "--listen",
      "127.0.0.1:0",
      "--stream-listen",
      "127.0.0.1:0",
    ]);
    await cp.waitFor(/config API https:\/\/127\.0\.0\.1:\d+, proxy stream/, 20_000);
    return new WeftMesh(cp, join(dir, "data", "config.json"), dir);
  }

  private get env(): NodeJS.ProcessEnv {
    return { ...process.env, WEFT_CONFIG: this.configFile };
  }

  /** `weft apply -f` of a YAML document (killed after `timeoutMs`, default 20 s). */
  async apply(name: string, yaml: string, timeoutMs = 20_000): Promise<string> {
    const file = join(this.dir, `${name}.yaml`);
    writeFileSync(file, yaml);
    const { stdout } = await run(process.execPath, [WEFT, "apply", "-f", file], {
      env: this.env,
      timeout: timeoutMs,
    });
    return stdout.trim();
  }

  /** Registers a static endpoint (no sidecar) for `service`. */
  applyStaticWorkload(name: string, service: string, port: number): Promise<string> {
    return this.apply(
      name,
      `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: { name: ${name}, labels: {} }
spec: { service: ${service}, address: 127.0.0.1, port: ${port} }
`,
    );
  }

  /** Starts `weft proxy` pinned to `core` and waits for /ready 200 (polled every 5 ms). */
  async startProxy(service: string, appPort: number, core: number): Promise<Sidecar> {
    const [outboundPort, inboundPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const prof = this.cpuProfDir
      ? [
          "--cpu-prof",
          `--cpu-prof-dir=${this.cpuProfDir}`,
          `--cpu-prof-name=${service}-${process.hrtime.bigint()}.cpuprofile`,
        ]
      : [];
    const args = [
      ...prof,
      WEFT,
      "proxy",
      ...(this.cpuProfDir ? ["--drain-delay", "0"] : []),
      "--service",
      service,
      "--port",
      String(appPort),
      "--inbound-port",
      String(inboundPort),
      "--outbound-port",
      String(outboundPort),
      "--admin-port",
      String(adminPort),
    ];
    const since = performance.now();
    const child = spawnPinned(`weft proxy ${service}`, core, process.execPath, args, this.env);
    const startupMs = await waitForHttp(`http://127.0.0.1:${adminPort}/ready`, {}, 20_000, child, {
      since,
      intervalMs: 5,
    });
    const metrics = async () => (await httpGet(`http://127.0.0.1:${adminPort}/metrics`)).body;
    return { child, service, outboundPort, inboundPort, adminPort, startupMs, metrics };
  }

  async stop(): Promise<void> {
    await this.controlPlane.stop();
  }
}

/** `weft proxy --help` works and the data plane's modules load: otherwise the weft cases are skipped. */
/** `npm run build`'s work: tsc into dist/ and the stamp bin/weft.js compares source times against. */
export function buildDist(log: (msg: string) => void): void {
  log("building dist/ (sidecars run the compiled JavaScript, as after npm ci)");
  execFileSync(
    process.execPath,
    [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(ROOT, "tsconfig.build.json")],
    {
      stdio: "inherit",
    },
  );
  writeFileSync(join(ROOT, "dist", ".stamp"), "");
}

export async function weftAvailable(): Promise<string | undefined> {
  try {
    await run(process.execPath, [WEFT, "proxy", "--help"], { timeout: 20_000 });
    await run(
      process.execPath,
      ["-e", `await import(${JSON.stringify(join(ROOT, "src/proxy/agent/proxy.ts"))})`],
      {
        timeout: 20_000,
      },
    );
    return undefined;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const lines = (e.stderr || e.message).trim().split("\n");
    return (lines.find((l) => /Error|Cannot find/.test(l)) ?? lines[0]).trim();
  }
}

/**
 * Sum of the samples in Prometheus text whose series mentions every word in `words` (case-insensitive),
 * e.g. ["inbound", "request"]: used to check that a request really went through a sidecar.
 */
export function sumSeries(text: string, words: string[]): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    const series = line.slice(0, space).toLowerCase();
    if (series.includes("_bucket") || series.includes("_sum")) continue;
    if (words.every((w) => series.includes(w.toLowerCase()))) sum += Number(line.slice(space + 1)) || 0;
  }
  return sum;
}
