// What every `weft` command is: a name, help text, its flags (node:util parseArgs) and a run function
// that returns the exit code.

import { parseArgs, type ParseArgsConfig } from "node:util";

export type Options = NonNullable<ParseArgsConfig["options"]>;

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Flag descriptions for --help, in order. */
  flags: [string, string][];
  options: Options;
  allowPositionals?: boolean;
  run(values: Record<string, unknown>, positionals: string[], rest: string[]): Promise<number>;
}

/** A user mistake: printed as one line plus a hint, exit code 2 (usage) or 1. */
export class CliError extends Error {
  readonly hint?: string;
  readonly exitCode: number;
  constructor(message: string, hint?: string, exitCode = 1) {
    super(message);
    this.hint = hint;
    this.exitCode = exitCode;
  }
}

export function parse(
  cmd: Command,
  argv: string[],
): { values: Record<string, unknown>; positionals: string[]; rest: string[] } {
  const dd = argv.indexOf("--");
  const own = dd >= 0 ? argv.slice(0, dd) : argv;
  const rest = dd >= 0 ? argv.slice(dd + 1) : [];
  try {
    const { values, positionals } = parseArgs({
      args: own,
      options: { ...cmd.options, help: { type: "boolean", short: "h" } },
      allowPositionals: cmd.allowPositionals ?? false,
      strict: true,
    });
    return { values, positionals, rest };
  } catch (err) {
    throw new CliError(
      `${(err as Error).message.split("\n")[0]}`,
      `run \`weft ${cmd.name} --help\` for usage`,
      2,
    );
  }
}

export function helpText(cmd: Command): string {
  const width = Math.max(...cmd.flags.map(([f]) => f.length), 10);
  const flags = cmd.flags.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`).join("\n");
  return `${cmd.summary}\n\nUsage: ${cmd.usage}\n\nFlags:\n${flags}\n  ${"-h, --help".padEnd(width)}  show this help\n`;
}

export function portFlag(value: unknown, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new CliError(`${flag} must be a port number (0-65535), got "${value}"`, undefined, 2);
  return n;
}

/** A duration flag in milliseconds (0 to one hour); `dflt` when absent. */
export function msFlag(value: unknown, flag: string, dflt: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (typeof value !== "string" || value.trim() === "" || !Number.isInteger(n) || n < 0 || n > 3_600_000)
    throw new CliError(
      `${flag} must be a whole number of milliseconds (0-3600000), got "${value}"`,
      undefined,
      2,
    );
  return n;
}

/** "k=v" pairs from a repeated flag. */
export function pairs(values: unknown, flag: string): [string, string][] {
  return ((values as string[] | undefined) ?? []).map((s) => {
    const i = s.indexOf("=");
    if (i <= 0) throw new CliError(`${flag} expects NAME=VALUE, got "${s}"`, undefined, 2);
    return [s.slice(0, i), s.slice(i + 1)];
  });
}
