import { resolve } from "node:path";
import { CliError, type Command } from "../command.ts";

export const demoCommand: Command = {
  name: "demo",
  summary: "start a demo mesh: control plane, four services with sidecars, live traffic",
  usage:
    "weft demo\n       weft demo chaos [WORKLOAD [fail=0.3] [status=503] [delay=200] | WORKLOAD reset] [--data-dir DIR]",
  flags: [
    [
      "chaos ...",
      "break a running demo's app on purpose (see demo/try/); without a workload, show every app's chaos",
    ],
    ["--data-dir DIR", "chaos: the running demo's data directory (default ./.weft)"],
  ],
  options: { "data-dir": { type: "string" } },
  allowPositionals: true,
  async run(v, positionals) {
    const [sub, ...args] = positionals;
    if (sub === "chaos") {
      const { runChaos } = await import("../../../demo/chaos.ts");
      return runChaos(args, { dataDir: resolve((v["data-dir"] as string | undefined) ?? ".weft") });
    }
    if (sub !== undefined)
      throw new CliError(`unknown argument "${sub}"`, "usage: weft demo | weft demo chaos ...", 2);
    if (v["data-dir"] !== undefined)
      throw new CliError(
        "--data-dir is for `weft demo chaos`",
        "the demo itself keeps its data in ./.weft of the directory it runs in",
        2,
      );
    const { runDemo } = await import("../../../demo/demo.ts");
    return runDemo();
  },
};
