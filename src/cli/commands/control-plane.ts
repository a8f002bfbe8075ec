import { DEFAULT_DATA_DIR } from "../../client/cli-config.ts";
import { join, resolve } from "node:path";
import { CliError, type Command } from "../command.ts";

function positive(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0)) throw new CliError(`${flag} must be a positive number of seconds, got "${v}"`, undefined, 2);
  return n;
}

function count(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new CliError(`${flag} must be a whole number of at least 1, got "${v}"`, undefined, 2);
  return n;
}

export const controlPlaneCommand: Command = {
  name: "control-plane",
  summary: "run the control plane (config API, proxy config stream, CA)",
  usage: "weft control-plane [--data-dir DIR] [--listen HOST:PORT] [--stream-listen HOST:PORT]",
  flags: [
    ["--data-dir DIR", `store, CA and credentials (default ${DEFAULT_DATA_DIR})`],
    ["--listen HOST:PORT", "config API (default 127.0.0.1:15000)"],
    ["--stream-listen HOST:PORT", "proxy config stream (default 127.0.0.1:15010)"],
    ["--trust-domain NAME", "SPIFFE trust domain of a new mesh (default weft.local)"],
    ["--ca-cert FILE", "use your CA (root or intermediate) instead of generating one"],
    ["--ca-key FILE", "its private key"],
    ["--cert-ttl SECONDS", "lifetime of workload certificates (default 86400 = 24 h)"],
    [
      "--grace-period SECONDS",
      "how long a disconnected or unresponsive proxy's workload stays registered (default 10)",
    ],
    ["--sign-rate N", "certificates signed per second at most, sustained (default 500)"],
    ["--sign-burst N", "certificates that may be signed at once after a quiet spell (default 100)"],
  ],
  options: {
    "data-dir": { type: "string" },
    listen: { type: "string" },
    "stream-listen": { type: "string" },
    "trust-domain": { type: "string" },
    "ca-cert": { type: "string" },
    "ca-key": { type: "string" },
    "grace-period": { type: "string" },
    "cert-ttl": { type: "string" },
    "sign-rate": { type: "string" },
    "sign-burst": { type: "string" },
  },
  async run(v) {
    const dataDir = resolve((v["data-dir"] as string) ?? DEFAULT_DATA_DIR);
    // A start storm is thousands of mTLS handshakes at once, as a sidecar's burst is: the same V8
    // young-generation setting keeps the pages it leaves behind from staying resident.
    (await import("../../proxy/agent/heap-tuning.ts")).tuneHeapForProxy();
    const cp = await (
      await import("../../control-plane/control-plane.ts")
    ).startControlPlane({
      dataDir,
      listen: v.listen as string | undefined,
      streamListen: v["stream-listen"] as string | undefined,
      trustDomain: v["trust-domain"] as string | undefined,
      caCertFile: v["ca-cert"] as string | undefined,
      caKeyFile: v["ca-key"] as string | undefined,
      graceSeconds: positive(v["grace-period"], "--grace-period"),
      certTtlSeconds: positive(v["cert-ttl"], "--cert-ttl"),
      signing: {
        ratePerSecond: count(v["sign-rate"], "--sign-rate"),
        burst: count(v["sign-burst"], "--sign-burst"),
      },
    });
    console.log(`weft control-plane: config API ${cp.apiUrl}, proxy stream ${cp.streamUrl}`);
    console.log(`weft control-plane: data in ${dataDir}; CLI config ${join(dataDir, "config.json")}`);
    await new Promise<void>((resolveStop) => {
      const stop = () => {
        console.log("weft control-plane: stopping");
        cp.close().then(resolveStop, resolveStop);
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    return 0;
  },
};
