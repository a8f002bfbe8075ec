// What every `weft` command is: a name, help text, its flags (node:util parseArgs) and a run function
// that returns the exit code.

import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseGatewayDuration } from "../model/duration.ts";

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

const MAX_DURATION_FLAG_MS = 86_400_000;

/**
 * A duration flag, in milliseconds: a Gateway API duration ("2s", "500ms", "1m30s") or a whole number
 * of milliseconds ("2000"), at most a day; `dflt` when absent. Every duration flag of the CLI reads
 * through this one function, so they all take the same forms.
 */
export function durationFlag<D extends number | undefined>(
  value: unknown,
  flag: string,
  dflt: D,
): number | D {
  if (value === undefined) return dflt;
  const s = typeof value === "string" ? value.trim() : "";
  const ms = /^[0-9]{1,9}$/.test(s) ? Number(s) : parseGatewayDuration(s);
  if (ms === undefined || ms > MAX_DURATION_FLAG_MS)
    throw new CliError(
      `${flag} ${JSON.stringify(value)} is not a duration`,
      'e.g. "30s", "500ms", "1m" or milliseconds ("2000"), at most 24h',
      2,
    );
  return ms;
}

/** "k=v" pairs from a repeated flag. */
export function pairs(values: unknown, flag: string): [string, string][] {
  return ((values as string[] | undefined) ?? []).map((s) => {
    const i = s.indexOf("=");
    if (i <= 0) throw new CliError(`${flag} expects NAME=VALUE, got "${s}"`, undefined, 2);
    return [s.slice(0, i), s.slice(i + 1)];
  });
}
