// How the demo runs weft itself: `node bin/weft.js ...` with this Node, from the user's directory, with
// WEFT_CONFIG pointing at the demo's data directory so every child finds the demo's control plane.

import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";

// This code runs either from the sources (demo/*.ts) or from the build (dist/demo/*.js, which
// bin/weft.js prefers when it is fresh). The apps are taken from the same place as this code; the
// YAML (demo/mesh, demo/try) and bin/weft.js only exist in the repository itself.
const here = fileURLToPath(import.meta.url);
/** Where the running demo code is: demo/ or dist/demo/. */
export const CODE_DIR = dirname(here);
/** ".ts" from the sources, ".js" from the build. */
export const CODE_EXT = extname(here);
export const REPO_DIR = findRepo(CODE_DIR);
/** The demo's folder in the repository: mesh/ and try/ resources. */
export const DEMO_DIR = join(REPO_DIR, "demo");
export const WEFT_BIN = join(REPO_DIR, "bin", "weft.js");

/** A demo app's file, e.g. "reviews" → .../demo/apps/reviews.ts. */
export function appFile(name: string): string {
  return join(CODE_DIR, "apps", `${name}${CODE_EXT}`);
}

function findRepo(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "bin", "weft.js")) && existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) return dirname(CODE_DIR); // not found: assume the source layout
  }
}

export interface WeftEnv {
  /** The user's directory: children run here, the data directory is ./.weft in it. */
  cwd: string;
  dataDir: string;
  env: NodeJS.ProcessEnv;
}

export function weftEnv(cwd: string, dataDir: string, extra: NodeJS.ProcessEnv = {}): WeftEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, WEFT_CONFIG: join(dataDir, "config.json") };
  // A join token from the user's shell would name some other service; each sidecar mints its own.
  delete env.WEFT_TOKEN;
  // `weft run` gives the app PORT=--port only when PORT is not already set (see the report); a PORT
  // from the user's shell would send every demo app to that one port.
  delete env.PORT;
  return { cwd, dataDir, env };
}

/** argv for a weft command: [node, [bin/weft.js, ...args]]. */
export function weftCommand(args: string[]): [string, string[]] {
  return [process.execPath, [WEFT_BIN, ...args]];
}

/** Runs a short weft command (apply, get) to completion. */
export function runWeft(
  w: WeftEnv,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, argv] = weftCommand(args);
  return new Promise((resolve) => {
    execFile(cmd, argv, { cwd: w.cwd, env: w.env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr: err && !stderr ? err.message : stderr });
    });
  });
}

/** The last `n` lines of a log file ("" if it cannot be read). */
export async function logTail(file: string, n = 12): Promise<string> {
  try {
    const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
    return lines.slice(-n).join("\n");
  } catch {
    return "";
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
