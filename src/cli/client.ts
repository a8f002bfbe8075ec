// How CLI commands find and call the control plane: --server/--config flags, $WEFT_CONFIG, or the
// config that `weft control-plane` wrote into ./.weft/.

import { callApi, ApiCallError, type ApiTarget } from "../client/api-client.ts";
import { readCliConfig, type CliConfig } from "../client/cli-config.ts";
import { CliError, type Options } from "./command.ts";

export const connectionOptions: Options = {
  config: { type: "string" },
  server: { type: "string" },
};

export const connectionFlags: [string, string][] = [
  ["--config FILE", "CLI config (default $WEFT_CONFIG or ./.weft/config.json)"],
  ["--server URL", "control plane config API URL (overrides the config's)"],
];

export async function loadConfig(v: Record<string, unknown>): Promise<CliConfig> {
  let found;
  try {
    found = await readCliConfig(v.config as string | undefined);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  if (!found) {
    throw new CliError(
      "no weft config found (looked at $WEFT_CONFIG and ./.weft/config.json)",
      "start `weft control-plane` in this directory, or pass --config FILE / set WEFT_CONFIG",
    );
  }
  const config = { ...found.config };
  if (v.server) config.server = v.server as string;
  return config;
}

export async function api<T>(
  v: Record<string, unknown>,
  method: string,
  path: string,
  body?: string | object,
): Promise<T> {
  const cfg = await loadConfig(v);
  const target: ApiTarget = { server: cfg.server, ca: cfg.ca, token: cfg.token };
  try {
    return await callApi<T>(target, method, path, body);
  } catch (err) {
    if (err instanceof ApiCallError) {
      if (err.status === 401)
        throw new CliError(
          `control plane refused the credential: ${err.message}`,
          "check --config / WEFT_CONFIG points at this control plane's config.json",
        );
      const e = new CliError(err.message);
      (e as CliError & { body?: unknown }).body = err.body;
      throw e;
    }
    throw new CliError((err as Error).message);
  }
}
