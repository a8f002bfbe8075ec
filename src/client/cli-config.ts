// The CLI config: where the control plane is, how to trust it, and a credential. `weft control-plane`
// writes it into its data directory; the CLI and local proxies read it (WEFT_CONFIG, --config, or
// ./.weft/config.json).

import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../pki/fs-atomic.ts";

export interface CliConfig {
  /** Config API URL, e.g. https://127.0.0.1:15000 */
  server: string;
  /** Proxy config stream URL, e.g. https://127.0.0.1:15010 */
  stream: string;
  /** Admin bearer token. */
  token: string;
  /** PEM trust bundle that verifies both servers. */
  ca: string;
}

export const CLI_CONFIG_FILE = "config.json";
export const DEFAULT_DATA_DIR = ".weft";

export async function writeCliConfig(dataDir: string, cfg: CliConfig): Promise<void> {
  await writeFileAtomic(join(dataDir, CLI_CONFIG_FILE), JSON.stringify(cfg, null, 2) + "\n", 0o600);
}

/** Finds and reads the CLI config: explicit path, then $WEFT_CONFIG, then ./.weft/config.json. */
export async function readCliConfig(
  explicit?: string,
): Promise<{ config: CliConfig; path: string } | undefined> {
  const candidates = explicit
    ? [explicit]
    : process.env.WEFT_CONFIG
      ? [process.env.WEFT_CONFIG]
      : [join(DEFAULT_DATA_DIR, CLI_CONFIG_FILE)];
  for (const c of candidates) {
    const path = resolve(c);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && !explicit && !process.env.WEFT_CONFIG)
        return undefined;
      throw new Error(`cannot read weft config ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const config = JSON.parse(text) as CliConfig;
      for (const f of ["server", "stream", "token", "ca"] as const) {
        if (typeof config[f] !== "string") throw new Error(`field "${f}" is missing`);
      }
      return { config, path };
    } catch (err) {
      throw new Error(`weft config ${path} is invalid: ${(err as Error).message}`, { cause: err });
    }
  }
  return undefined;
}
