import { normalizeKind, KINDS } from "../../model/resources.ts";
import { api, connectionFlags, connectionOptions } from "../client.ts";
import { CliError, type Command } from "../command.ts";
import { readManifests } from "./apply.ts";

export const deleteCommand: Command = {
  name: "delete",
  summary: "delete resources by kind and name, or those in files",
  usage: "weft delete KIND NAME [-n NS] | weft delete -f FILE|DIR",
  flags: [
    ["-n, --namespace NS", "namespace (default 'default')"],
    ["-f, --filename PATH", "delete the resources these files define (repeatable)"],
    ...connectionFlags,
  ],
  options: {
    namespace: { type: "string", short: "n" },
    filename: { type: "string", short: "f", multiple: true },
    ...connectionOptions,
  },
  allowPositionals: true,
  async run(v, pos) {
    const targets: { kind: string; namespace: string; name: string }[] = [];
    if (v.filename) {
      const { parseAllDocuments } = await import("yaml");
      for (const f of await readManifests(v.filename as string[])) {
        for (const doc of parseAllDocuments(f.content)) {
          const r = doc.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string } } | null;
          if (r?.kind && r.metadata?.name)
            targets.push({
              kind: r.kind,
              namespace: r.metadata.namespace ?? "default",
              name: r.metadata.name,
            });
        }
      }
    } else {
      const [kindArg, name] = pos;
      if (!kindArg || !name)
        throw new CliError("expected KIND NAME or -f FILE", "e.g. weft delete httproute reviews-split", 2);
      targets.push({ kind: kindArg, namespace: (v.namespace as string) ?? "default", name });
    }
    for (const t of targets) {
      const kind = normalizeKind(t.kind);
      if (!kind) throw new CliError(`unknown kind "${t.kind}"`, `kinds: ${KINDS.join(", ")}`, 2);
      await api(
        v,
        "DELETE",
        `/api/v1/resources/${kind}/${encodeURIComponent(t.namespace)}/${encodeURIComponent(t.name)}`,
      );
      process.stdout.write(`${kind.toLowerCase()}/${t.name} (${t.namespace}) deleted\n`);
    }
    return 0;
  },
};
