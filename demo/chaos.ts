// `weft demo chaos`: breaks one app of a running demo on purpose, so the scenarios in demo/try/ have
// something to fix. It finds the app's port in the demo's state file (<data dir>/demo-logs/state.json,
// written when the mesh is up) and sends the app's chaos switch (demo/apps/lib.ts) a POST /chaos,
// straight to the app, not through the mesh: this is the app misbehaving, not the network.
//
//   weft demo chaos                                   every app and its chaos
//   weft demo chaos reviews-v3 fail=0.3 status=503    v3 answers 30% of its requests with 503
//   weft demo chaos ratings delay=1000                ratings takes a second per request
//   weft demo chaos reviews-v3 reset                  v3 behaves again

import { readFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { CliError } from "../src/cli/command.ts";
import { ChaosError, parseChaos } from "./apps/lib.ts";

export const CHAOS_USAGE =
  "weft demo chaos [WORKLOAD [fail=0.3] [status=503] [delay=200] | WORKLOAD reset] [--data-dir DIR]";

export interface ChaosTarget {
  /** The workload's name in the demo (reviews-v3, ratings, ...). */
  name: string;
  service: string;
  appPort: number;
}

interface DemoState {
  workloads?: { name?: unknown; service?: unknown; ports?: { app?: unknown } }[];
}

/** The demo's apps that serve requests (not `traffic`, which only sends them), from its state file. */
export async function readChaosTargets(dataDir: string): Promise<ChaosTarget[]> {
  const file = join(dataDir, "demo-logs", "state.json");
  let state: DemoState;
  try {
    state = JSON.parse(await readFile(file, "utf8")) as DemoState;
  } catch {
    throw new CliError(
      `no running demo found: cannot read ${file}`,
      "start one with `weft demo` (npm start) in this directory, or pass --data-dir DIR if it runs elsewhere",
    );
  }
  return (state.workloads ?? [])
    .filter((w) => typeof w.name === "string" && typeof w.ports?.app === "number" && w.service !== "traffic")
    .map((w) => ({ name: w.name as string, service: String(w.service), appPort: w.ports!.app as number }));
}

/** A workload by name, or by its service's name when the service runs one instance. */
export function findTarget(targets: ChaosTarget[], name: string): ChaosTarget {
  const exact = targets.find((t) => t.name === name);
  if (exact) return exact;
  const ofService = targets.filter((t) => t.service === name);
  if (ofService.length === 1) return ofService[0];
  const names = targets.map((t) => t.name).join(", ");
  if (ofService.length > 1)
    throw new CliError(
      `${name} runs ${ofService.length} instances: name one (${ofService.map((t) => t.name).join(", ")})`,
      undefined,
      2,
    );
  if (name === "traffic")
    throw new CliError("traffic only sends requests: chaos in it would change nothing", `apps: ${names}`, 2);
  throw new CliError(`no demo app named "${name}"`, `apps: ${names}`, 2);
}

/** The settings arguments as one query: ["fail=0.3", "status=503"] → "fail=0.3&status=503". */
export function chaosQuery(settings: string[]): string {
  const params = new URLSearchParams(settings.join("&"));
  try {
    parseChaos(params); // the app checks too; checking here gives the error before any request
  } catch (err) {
    if (err instanceof ChaosError) throw new CliError(err.message, `usage: ${CHAOS_USAGE}`, 2);
    throw err;
  }
  return params.toString().replace(/=(&|$)/g, "$1"); // "reset=" → "reset"
}

interface ChaosReply {
  description?: string;
  error?: string;
}

/** Runs `weft demo chaos ARGS`; prints what each app's chaos is now. */
export async function runChaos(
  args: string[],
  opts: { dataDir: string; out?: (line: string) => void },
): Promise<number> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const targets = await readChaosTargets(opts.dataDir);
  const [name, ...settings] = args;
  if (name === undefined) {
    const width = Math.max(...targets.map((t) => t.name.length));
    for (const t of targets) {
      const reply = await postChaos(t, "GET", "");
      out(`${t.name.padEnd(width)}  ${reply.description ?? reply.error}`);
    }
    return 0;
  }
  const target = findTarget(targets, name);
  if (settings.length === 0) {
    out(`${target.name}: ${(await postChaos(target, "GET", "")).description}`);
    return 0;
  }
  const query = chaosQuery(settings);
  const reply = await postChaos(target, "POST", query);
  out(`${target.name}: ${reply.description}`);
  if (reply.description !== "off") out(`  (undo: weft demo chaos ${target.name} reset)`);
  return 0;
}

function postChaos(t: ChaosTarget, method: "GET" | "POST", query: string): Promise<ChaosReply> {
  const where = `the ${t.name} app on 127.0.0.1:${t.appPort}`;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: t.appPort,
        method,
        path: query ? `/chaos?${query}` : "/chaos",
        timeout: 3000,
      },
      (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => {
          let reply: ChaosReply;
          try {
            reply = JSON.parse(body) as ChaosReply;
          } catch {
            return reject(
              new CliError(`${where} answered ${res.statusCode} without JSON: is it a demo app?`),
            );
          }
          if (res.statusCode !== 200)
            return reject(new CliError(`${where}: ${reply.error ?? `HTTP ${res.statusCode}`}`, undefined, 2));
          resolve(reply);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer in 3 s")));
    req.on("error", (err) =>
      reject(
        new CliError(
          `${where} is not answering (${err.message})`,
          "is the demo still running? Its state file is from its last start",
        ),
      ),
    );
    req.end();
  });
}
