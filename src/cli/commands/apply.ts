import { readdir, readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { formatViolation, type Violation } from "../../model/violation.ts";
import { api, connectionFlags, connectionOptions } from "../client.ts";
import { CliError, type Command } from "../command.ts";
import { logSafe } from "../../model/log-safe.ts";

export const applyCommand: Command = {
  name: "apply",
  summary: "create or update resources from YAML/JSON files (atomic: all or nothing)",
  usage: "weft apply -f FILE|DIR|- [-f ...]",
  flags: [
    ["-f, --filename PATH", "a file, a directory of .yaml/.yml/.json files, or - for stdin (repeatable)"],
    ...connectionFlags,
  ],
  options: { filename: { type: "string", short: "f", multiple: true }, ...connectionOptions },
  async run(v) {
    const paths = (v.filename as string[] | undefined) ?? [];
    if (paths.length === 0)
      throw new CliError("no input: pass -f FILE, -f DIR or -f -", "e.g. weft apply -f routes.yaml", 2);
    const files = await readManifests(paths);
    type Out = { results: { kind: string; namespace: string; name: string; action: string }[] };
    let out: Out;
    try {
      out = await api<Out>(v, "POST", "/api/v1/apply", { files });
    } catch (err) {
      const violations = (err as { body?: { violations?: Violation[] } }).body?.violations;
      if (violations?.length) {
        for (const viol of violations) process.stderr.write(logSafe(formatViolation(viol), 4096) + "\n");
        throw new CliError(
          `${violations.length} problem(s) found; nothing was applied`,
          "fix the lines above and apply again",
        );
      }
      throw err;
    }
    for (const r of out.results)
      process.stdout.write(`${r.kind.toLowerCase()}/${r.name} (${r.namespace}) ${r.action}\n`);
    return 0;
  },
};

export async function readManifests(paths: string[]): Promise<{ name: string; content: string }[]> {
  const files: { name: string; content: string }[] = [];
  for (const p of paths) {
    if (p === "-") {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      files.push({ name: "<stdin>", content: Buffer.concat(chunks).toString("utf8") });
      continue;
    }
    let st;
    try {
      st = await stat(p);
    } catch {
      throw new CliError(`cannot read ${p}: no such file or directory`);
    }
    if (st.isDirectory()) {
      const names = (await readdir(p)).filter((n) => [".yaml", ".yml", ".json"].includes(extname(n))).sort();
      if (names.length === 0) throw new CliError(`${p} has no .yaml, .yml or .json files`);
      for (const n of names) files.push({ name: join(p, n), content: await readFile(join(p, n), "utf8") });
    } else {
      files.push({ name: p, content: await readFile(p, "utf8") });
    }
  }
  return files;
}
