// The external tools the benchmark drives (Debian packages), installed with apt-get when missing, and
// the versions recorded with each run.

import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { release } from "node:os";

const TOOLS: { command: string; pkg: string }[] = [
  { command: "wrk", pkg: "wrk" },
  { command: "h2load", pkg: "nghttp2-client" },
  { command: "nginx", pkg: "nginx" },
  { command: "taskset", pkg: "util-linux" },
];

function has(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/** Installs the packages of missing tools with apt-get (its output goes to stderr); throws if that fails. */
export function ensureTools(log: (msg: string) => void): void {
  const missing = TOOLS.filter((t) => !has(t.command));
  if (missing.length === 0) {
    log(`tools present: ${TOOLS.map((t) => t.command).join(", ")}`);
    return;
  }
  const pkgs = [...new Set(missing.map((t) => t.pkg))];
  log(
    `missing ${missing.map((t) => t.command).join(", ")}: running apt-get update && apt-get install -y ${pkgs.join(" ")}`,
  );
  // apt-get's output goes to our stderr (fd 2), keeping stdout for the results.
  const opts = { stdio: ["ignore", 2, 2] as ("ignore" | number)[], timeout: 240_000 };
  spawnSync("apt-get", ["update"], opts);
  const res = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", ...pkgs], {
    ...opts,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  const still = TOOLS.filter((t) => !has(t.command));
  if (res.status !== 0 || still.length) {
    throw new Error(
      `could not install ${pkgs.join(" ")} (apt-get exit ${res.status}); install them and retry`,
    );
  }
}

function firstLine(cmd: string, args: string[]): string {
  const res = spawnSync(cmd, args, { encoding: "utf8" });
  return `${res.stdout ?? ""}${res.stderr ?? ""}`.trim().split("\n")[0] ?? "";
}

/** Pins this process to `core`, so the harness's own work stays off the proxies' core. */
export function pinSelf(core: number): void {
  execFileSync("taskset", ["-p", "-c", String(core), String(process.pid)], { stdio: "ignore" });
}

export function environment(): Record<string, string> {
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown";
  return {
    node: process.version,
    kernel: release(),
    cpu,
    nginx: firstLine("nginx", ["-v"]),
    wrk: firstLine("wrk", ["-v"]).replace(/\s+Copyright.*/, ""),
    h2load: firstLine("h2load", ["--version"]),
  };
}
