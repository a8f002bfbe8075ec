import { DEFAULT_NAMESPACE } from "../../model/resources.ts";
import { MAX_TOKEN_TTL_SECONDS, MIN_TOKEN_TTL_SECONDS } from "../../pki/tokens.ts";
import { api, connectionFlags, connectionOptions } from "../client.ts";
import { CliError, type Command } from "../command.ts";

export const tokenCommand: Command = {
  name: "token create",
  summary: "issue a join token bound to one service identity",
  usage: "weft token create --service NAME [--namespace NS] [--ttl SECONDS]",
  flags: [
    ["--service NAME", "the service the token's holder may get certificates for (required)"],
    ["--namespace NS", `its namespace (default ${DEFAULT_NAMESPACE})`],
    ["--ttl SECONDS", `token lifetime, ${MIN_TOKEN_TTL_SECONDS} s to 365 days (default 30 days)`],
    ...connectionFlags,
  ],
  options: {
    service: { type: "string" },
    namespace: { type: "string", short: "n" },
    ttl: { type: "string" },
    ...connectionOptions,
  },
  async run(v) {
    if (!v.service)
      throw new CliError("--service is required", "e.g. weft token create --service reviews", 2);
    const ttlSeconds = v.ttl === undefined ? undefined : Number(v.ttl);
    if (
      ttlSeconds !== undefined &&
      !(
        Number.isInteger(ttlSeconds) &&
        ttlSeconds >= MIN_TOKEN_TTL_SECONDS &&
        ttlSeconds <= MAX_TOKEN_TTL_SECONDS
      )
    )
      throw new CliError(
        `--ttl must be a whole number of seconds from ${MIN_TOKEN_TTL_SECONDS} to ${MAX_TOKEN_TTL_SECONDS} (365 days), got "${v.ttl}"`,
        undefined,
        2,
      );
    const out = await api<{ token: string; identity: string }>(v, "POST", "/api/v1/tokens", {
      service: v.service,
      namespace: v.namespace ?? DEFAULT_NAMESPACE,
      ttlSeconds,
    });
    process.stdout.write(out.token + "\n");
    process.stderr.write(
      `token for ${out.identity}; pass it to a proxy with --token-file FILE or WEFT_TOKEN\n`,
    );
    return 0;
  },
};
