import { DEFAULT_DATA_DIR } from "../../client/cli-config.ts";
import { join, resolve } from "node:path";
import type { Command } from "../command.ts";

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
    ["--grace-period SECONDS", "how long a disconnected proxy's workload stays registered (default 10)"],
  ],
  options: {
    "data-dir": { type: "string" },
    listen: { type: "string" },
    "stream-listen": { type: "string" },
    "trust-domain": { type: "string" },
    "ca-cert": { type: "string" },
    "ca-key": { type: "string" },
    "grace-period": { type: "string" },
  },
  async run(v) {
    const dataDir = resolve((v["data-dir"] as string) ?? DEFAULT_DATA_DIR);
    const cp = await (await import("../../control-plane/control-plane.ts")).startControlPlane({
      dataDir,
      listen: v.listen as string | undefined,
      streamListen: v["stream-listen"] as string | undefined,
      trustDomain: v["trust-domain"] as string | undefined,
      caCertFile: v["ca-cert"] as string | undefined,
      caKeyFile: v["ca-key"] as string | undefined,
      graceSeconds: v["grace-period"] ? Number(v["grace-period"]) : undefined,
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
