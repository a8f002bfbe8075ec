import type { Command } from "../command.ts";

export const demoCommand: Command = {
  name: "demo",
  summary: "start a demo mesh: control plane, four services with sidecars, live traffic",
  usage: "weft demo",
  flags: [],
  options: {},
  async run() {
    const { runDemo } = await import("../../../demo/demo.ts");
    return runDemo();
  },
};
