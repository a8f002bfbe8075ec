// `weft demo` (`npm start`): a demo mesh on this machine. The control plane, six service instances
// (storefront → catalog, reviews v1/v2/v3 → ratings) each under its sidecar, steady traffic, and a
// live summary of every sidecar's golden metrics until Ctrl-C; then everything stops, in order.

import { mkdir, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import {
  applyDemoResources,
  existingRoutes,
  startControlPlane,
  type DemoControlPlane,
} from "./control-plane.ts";
import { OptionError, resolveOptions, type DemoOptions, type ResolvedOptions } from "./options.ts";
import { MetricsScraper, type SummaryRow } from "./scraper.ts";
import { shutdown, StopSignal, Stopped } from "./shutdown.ts";
import { renderSummary, Screen } from "./summary.ts";
import { signalGroup, Supervisor } from "./supervisor.ts";
import { DEMO_DIR, logTail, REPO_DIR, WEFT_BIN, weftEnv, type WeftEnv } from "./weft-cli.ts";
import {
  allocatePorts,
  SERVICES,
  startWorkload,
  TRAFFIC,
  waitHealthy,
  type RunningWorkload,
} from "./workloads.ts";

export type { DemoOptions } from "./options.ts";

/** One summary refresh, as written to demo-logs/summary.json. */
export interface HistoryEntry {
  at: number;
  rows: {
    key: string;
    rps?: number;
    success?: number;
    p50?: number;
    p99?: number;
    total: number;
    /** Success rate as the service's callers saw it (service rows only). */
    callers?: number;
  }[];
}

export async function runDemo(options: DemoOptions = {}): Promise<number> {
  let o: ResolvedOptions;
  try {
    o = resolveOptions(options);
  } catch (err) {
    if (!(err instanceof OptionError)) throw err;
    process.stderr.write(`weft demo: ${err.message}\n`);
    return 2;
  }
  const dataDir = resolve(o.cwd, ".weft");
  const logsDir = join(dataDir, "demo-logs");
  await mkdir(logsDir, { recursive: true });
  const rel = (p: string) => shortPath(o.cwd, p);
  const w = weftEnv(o.cwd, dataDir, { WEFT_DEMO_RPS: String(o.rps) });
  const screen = new Screen();
  const say = (line: string) => screen.print(line);

  const sup = new Supervisor();
  const stop = new StopSignal();
  const workloads: RunningWorkload[] = [];
  let cp: DemoControlPlane | undefined;
  sup.onUnexpectedExit = (child, status) =>
    stop.request({
      code: 1,
      failed: child,
      message: `weft demo: ${child.name} (pid ${child.pid}) exited unexpectedly (${status.signal ?? `code ${status.code}`}); stopping the demo`,
    });
  let firstSignalAt = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (!firstSignalAt) {
      firstSignalAt = Date.now();
      return stop.request({ code: 0, message: `weft demo: ${sig}, stopping (Ctrl-C again to kill at once)` });
    }
    // Under `npm start` one Ctrl-C arrives twice (from the terminal, and forwarded by npm): only a
    // second Ctrl-C a moment later means "no more waiting".
    if (Date.now() - firstSignalAt < 1000) return;
    say("weft demo: killing everything now");
    sup.killAllNow();
    for (const wl of workloads) if (wl.appPid) signalGroup(wl.appPid, "SIGKILL");
    process.exit(130);
  };
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const sig of signals) process.on(sig, onSignal);

  const history: HistoryEntry[] = [];
  try {
    say(`weft demo: starting the control plane (data in ${rel(dataDir)}/, logs in ${rel(logsDir)}/)`);
    cp = await stop.race(
      startControlPlane(sup, w, {
        apiPort: o.cpPort,
        streamPort: o.streamPort,
        logFile: join(logsDir, "control-plane.log"),
      }),
    );
    say(`weft demo: control plane is up at ${cp.url}; applying ${rel(join(DEMO_DIR, "mesh"))}/`);
    for (const line of await stop.race(applyDemoResources(w))) say(`  ${line}`);
    if ((await existingRoutes(w)).includes("reviews")) {
      say(
        "  note: HTTPRoute reviews from an earlier run is still applied (`weft delete httproute reviews` to balance over v1, v2, v3)",
      );
    }

    const ports = await allocatePorts(SERVICES.length + 1);
    say(
      `weft demo: starting ${SERVICES.map((s) => s.name).join(", ")}, each under \`weft run\` (its sidecar)`,
    );
    SERVICES.forEach((s, i) => workloads.push(startWorkload(sup, w, s, ports[i], logsDir)));
    await stop.race(Promise.all(workloads.map((wl) => waitHealthy(wl))));
    const traffic = startWorkload(sup, w, TRAFFIC, ports[SERVICES.length], logsDir);
    workloads.push(traffic);
    await stop.race(waitHealthy(traffic));
    await writeState(logsDir, cp, workloads);
    say(`weft demo: the mesh is up; traffic sends ${o.rps} req/s to http://storefront/ through its sidecar`);
    await liveSummary(o, w, cp, workloads, stop, screen, history, {
      logsDir: rel(logsDir),
      demoDir: rel(DEMO_DIR),
      docsFile: rel(join(REPO_DIR, "docs", "demo.md")),
    });
  } catch (err) {
    if (!(err instanceof Stopped)) stop.request({ code: 1, message: `weft demo: ${(err as Error).message}` });
  }

  const reason = stop.reason!;
  say(reason.message);
  const stopStarted = Date.now();
  const report = await shutdown(sup, workloads, cp?.child, say);
  sup.dispose();
  for (const sig of signals) process.off(sig, onSignal);
  await writeFile(
    join(logsDir, "summary.json"),
    JSON.stringify({ exitCode: reason.code, history }, null, 1) + "\n",
  );
  if (reason.failed) {
    say(
      `--- last lines of ${rel(reason.failed.logFile)} ---\n${await logTail(reason.failed.logFile, 20)}\n---`,
    );
  }
  if (report.killed.length)
    say(`weft demo: had to kill ${report.killed.join(", ")} (did not stop within 5 s)`);
  const took = ((Date.now() - stopStarted) / 1000).toFixed(1);
  say(`weft demo: stopped ${report.stopped} processes in ${took} s; logs are in ${rel(logsDir)}/`);
  return reason.code;
}

async function liveSummary(
  o: ResolvedOptions,
  w: WeftEnv,
  cp: DemoControlPlane,
  workloads: RunningWorkload[],
  stop: StopSignal,
  screen: Screen,
  history: HistoryEntry[],
  paths: { logsDir: string; demoDir: string; docsFile: string },
): Promise<void> {
  // Every sidecar, the traffic's too: it has no row, but its calls are what the storefront's callers saw.
  const scraper = new MetricsScraper(
    workloads.map((wl) => ({
      service: wl.spec.service,
      version: wl.spec.version,
      adminPort: wl.ports.admin,
      hidden: wl.spec === TRAFFIC,
    })),
  );
  const started = Date.now();
  const timer = o.durationMs
    ? setTimeout(
        () => stop.request({ code: 0, message: `weft demo: ran for ${o.durationMs} ms, stopping` }),
        o.durationMs,
      )
    : undefined;
  const cli = resolve(o.cwd) === REPO_DIR ? "npx weft" : `node ${shortPath(w.cwd, WEFT_BIN)}`;
  try {
    while (!stop.requested) {
      await scraper.scrape();
      const rows = scraper.rows();
      history.push({ at: Date.now(), rows: rows.map(flatten) });
      if (history.length > 600) history.shift();
      if (!o.quiet && !stop.requested) {
        screen.draw(
          renderSummary({
            rows,
            uptimeMs: Date.now() - started,
            controlPlane: cp.url,
            cli,
            demoDir: paths.demoDir,
            docsFile: paths.docsFile,
            logsDir: paths.logsDir,
            reviewsAdminPort: workloads.find((wl) => wl.spec.name === "reviews-v1")?.ports.admin,
            trafficOutboundPort: workloads.find((wl) => wl.spec === TRAFFIC)?.ports.outbound,
          }),
        );
      }
      await Promise.race([new Promise((r) => setTimeout(r, o.intervalMs)), stop.promise]);
    }
  } finally {
    clearTimeout(timer);
  }
}

/** `p` relative to `cwd` when it is inside it, else absolute. */
function shortPath(cwd: string, p: string): string {
  const r = relative(cwd, p);
  return r.startsWith("..") || isAbsolute(r) ? p : r || ".";
}

function flatten(r: SummaryRow): HistoryEntry["rows"][number] {
  const { rps, success, p50, p99, total } = r.signals;
  return { key: r.key, rps, success, p50, p99, total, callers: r.callers?.success };
}

/**
 * demo-logs/state.json: what runs where, for people (admin ports to curl), for `weft demo chaos`
 * (app ports) and for the demo's test.
 */
async function writeState(
  logsDir: string,
  cp: DemoControlPlane,
  workloads: RunningWorkload[],
): Promise<void> {
  const state = {
    controlPlane: { url: cp.url, pid: cp.child.pid },
    workloads: workloads.map((wl) => ({
      name: wl.spec.name,
      service: wl.spec.service,
      version: wl.spec.version,
      pid: wl.child.pid,
      appPid: wl.appPid,
      ports: wl.ports,
    })),
  };
  await writeFile(join(logsDir, "state.json"), JSON.stringify(state, null, 2) + "\n");
}
