// `weft` — the command-line entry point. Each command lives in commands/<verb>.ts.

import { applyCommand } from "./commands/apply.ts";
import { controlPlaneCommand } from "./commands/control-plane.ts";
import { deleteCommand } from "./commands/delete.ts";
import { demoCommand } from "./commands/demo.ts";
import { getCommand } from "./commands/get.ts";
import { proxyCommand } from "./commands/proxy.ts";
import { runCommand } from "./commands/run.ts";
import { tokenCommand } from "./commands/token.ts";
import { CliError, helpText, parse, type Command } from "./command.ts";

const commands: Command[] = [
  controlPlaneCommand,
  proxyCommand,
  runCommand,
  applyCommand,
  getCommand,
  deleteCommand,
  tokenCommand,
  demoCommand,
];

function usage(): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(14)} ${c.summary}`).join("\n");
  return `weft — a service mesh for Node.js\n\nUsage: weft <command> [flags]\n\nCommands:\n${lines}\n\nRun \`weft <command> --help\` for a command's flags.\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "version") {
    process.stdout.write("weft 0.1.0\n");
    return 0;
  }
  // "token create" is one command with a sub-verb.
  const cmd = commands.find((c) => c.name === name || c.name === `${name} ${args[0]}`);
  if (!cmd) throw new CliError(`unknown command "${name}"`, "run `weft --help` to list commands", 2);
  const own = cmd.name.includes(" ") ? args.slice(1) : args;
  const { values, positionals, rest } = parse(cmd, own);
  if (values.help) {
    process.stdout.write(helpText(cmd));
    return 0;
  }
  return cmd.run(values, positionals, rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof CliError) {
    process.stderr.write(`weft: ${err.message}\n${err.hint ? `  ${err.hint}\n` : ""}`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`weft: ${(err as Error)?.message ?? err}\n`);
    process.exitCode = 1;
  }
  // A command that failed must not linger on whatever it had already opened (a listener, a child).
  process.exit();
}
