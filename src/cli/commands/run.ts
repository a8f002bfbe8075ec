// `weft run`: an app under its sidecar, in the order that loses no request (docs/proxy.md, "Lifecycle").
// Start: the sidecar first; the app once the sidecar is ready; the instance becomes an endpoint when
// the app accepts connections. Stop (SIGTERM/SIGINT, POST /drain, or the app's own exit): the sidecar
// leaves the endpoints, serves on for the drain delay, then the app gets SIGTERM (its process group)
// and --stop-timeout to exit before SIGKILL; then the sidecar closes and weft run exits with the app's
// status.

import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { CliError, durationFlag, type Command } from "../command.ts";
import { proxyFlags, proxyOptions, resolveProxyOptions } from "../proxy-flags.ts";
import { DEFAULT_STOP_TIMEOUT_MS } from "../../proxy/agent/lifecycle-defaults.ts";
import type { ManagedApp } from "../../proxy/agent/proxy.ts";

/** Signals that stop the instance by the drain sequence; a second one goes straight to the app. */
const STOP_SIGNALS = ["SIGINT", "SIGTERM"] as const;
/** Signals passed on to the app as they are. */
const FORWARDED = ["SIGHUP", "SIGQUIT"] as const;

/** What the app must not inherit: the join token, and where the admin credential lives. */
const PRIVATE_ENV = ["WEFT_TOKEN", "WEFT_CONFIG"];

/** util-linux's setpriv (Debian and most Linux systems have it), for --pdeathsig. */
const SETPRIV =
  process.platform === "linux" ? ["/usr/bin/setpriv", "/bin/setpriv"].find(isExecutable) : undefined;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Where execvp would find `cmd`: itself when it has a slash, else the first match on PATH. */
export function findCommand(cmd: string, path: string | undefined): string | undefined {
  if (cmd.includes("/")) return isExecutable(cmd) ? cmd : undefined;
  for (const dir of (path ?? "").split(delimiter)) {
    const candidate = join(dir === "" ? "." : dir, cmd);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export const runCommand: Command = {
  name: "run",
  summary: "run an app with its sidecar: proxy first, app when the proxy is ready",
  usage: "weft run --service NAME --port APP_PORT [flags] -- COMMAND [ARGS...]",
  flags: [
    ...proxyFlags,
    ["--ready-timeout DURATION", "give up if the proxy is not ready in time (default 10s)"],
    [
      "--stop-timeout DURATION",
      `how long the app has to exit after SIGTERM before SIGKILL (default ${DEFAULT_STOP_TIMEOUT_MS / 1000}s)`,
    ],
  ],
  options: {
    ...proxyOptions,
    "ready-timeout": { type: "string" },
    "stop-timeout": { type: "string" },
  },
  async run(v, _pos, rest) {
    if (rest.length === 0)
      throw new CliError(
        "missing the app's command after --",
        "e.g. weft run --service orders --port 3000 -- node orders.js",
        2,
      );
    const timeoutMs = durationFlag(v["ready-timeout"], "--ready-timeout", 10_000);
    const stopTimeoutMs = durationFlag(v["stop-timeout"], "--stop-timeout", DEFAULT_STOP_TIMEOUT_MS);
    const opts = await resolveProxyOptions(v);
    const proxy = await (await import("../../proxy/agent/proxy.ts")).startProxy(opts);
    let timer: NodeJS.Timeout | undefined;
    const problem = await Promise.race([
      proxy.whenReady.then(
        () => undefined,
        (err: Error) => err.message,
      ),
      new Promise<string>(
        (r) => (timer = setTimeout(() => r("no config from the control plane"), timeoutMs)),
      ),
    ]);
    clearTimeout(timer);
    if (problem !== undefined || !proxy.ready()) {
      await proxy.drain();
      throw new CliError(`proxy not ready after ${timeoutMs} ms (${problem}); the app was not started`);
    }
    const outbound = `http://127.0.0.1:${proxy.outboundPort}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HTTP_PROXY: outbound,
      http_proxy: outbound,
      // Node >= 24.5 honours HTTP_PROXY in fetch and node:http only when asked to.
      NODE_USE_ENV_PROXY: "1",
      NO_PROXY: "localhost,127.0.0.1,::1",
      no_proxy: "localhost,127.0.0.1,::1",
      WEFT_SERVICE: opts.service,
      WEFT_NAMESPACE: opts.namespace,
      WEFT_IDENTITY: proxy.identity,
      WEFT_APP_PORT: String(opts.appPort),
      WEFT_OUTBOUND: outbound,
      WEFT_ADMIN: `http://127.0.0.1:${proxy.adminPort}`,
      PORT: String(opts.appPort),
    };
    for (const [svc, port] of Object.entries(proxy.upstreamPorts))
      env[`WEFT_UPSTREAM_${svc.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`] = `127.0.0.1:${port}`;
    for (const k of PRIVATE_ENV) delete env[k];
    const command = findCommand(rest[0], env.PATH);
    if (command === undefined) {
      process.stderr.write(`weft run: cannot start ${rest[0]}: not found or not executable\n`);
      await proxy.drain();
      return 127;
    }
    // If weft run itself is killed outright (SIGKILL, OOM), nothing here runs to stop the app; on
    // Linux the kernel can: setpriv --pdeathsig asks it to send the app SIGTERM when we die.
    const [file, args] =
      SETPRIV === undefined
        ? [command, rest.slice(1)]
        : [SETPRIV, ["--pdeathsig", "TERM", "--", command, ...rest.slice(1)]];
    // Own process group, so signals reach the whole app (e.g. `npm start` and its children).
    const child = spawn(file, args, { stdio: "inherit", env, detached: true });
    const app = appProcess(child, rest[0], stopTimeoutMs);
    proxy.manage(app);

    const handlers: [NodeJS.Signals, () => void][] = [
      ...STOP_SIGNALS.map((sig): [NodeJS.Signals, () => void] => [
        sig,
        // The first stops the instance in order; an impatient second goes to the app at once.
        () => (app.stopping ? app.signal(sig) : ((app.stopping = true), void proxy.drain())),
      ]),
      ...FORWARDED.map((sig): [NodeJS.Signals, () => void] => [sig, () => app.signal(sig)]),
    ];
    for (const [sig, h] of handlers) process.on(sig, h);
    // The app exiting on its own (or told to by POST /drain) stops the instance too.
    void app.exited.then(() => proxy.drain());
    const code = await app.exited;
    await proxy.stopped;
    for (const [sig, h] of handlers) process.off(sig, h);
    return code;
  },
};

interface AppProcess extends ManagedApp {
  exited: Promise<number>;
  /** A stop was asked for (by a signal to weft run). */
  stopping: boolean;
  signal(sig: NodeJS.Signals): void;
}

/** The app's process group: signals to all of it, SIGTERM then SIGKILL after the stop timeout. */
function appProcess(child: ChildProcess, name: string, stopTimeoutMs: number): AppProcess {
  let gone = false;
  const exited = new Promise<number>((resolve) => {
    child.on("error", (err) => {
      gone = true;
      process.stderr.write(`weft run: cannot start ${name}: ${err.message}\n`);
      resolve(127);
    });
    child.on("exit", (c, sig) => {
      gone = true;
      resolve(c ?? 128 + (sig ? signalNumber(sig) : 1));
    });
  });
  const signal = (sig: NodeJS.Signals) => {
    if (gone) return;
    try {
      if (child.pid) process.kill(-child.pid, sig);
    } catch {
      child.kill(sig);
    }
  };
  return {
    exited,
    stopping: false,
    signal,
    async stop() {
      signal("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), stopTimeoutMs))),
      ]);
      clearTimeout(timer);
      if (late) {
        process.stderr.write(
          `weft run: ${name} did not exit within ${stopTimeoutMs} ms of SIGTERM; killing it\n`,
        );
        signal("SIGKILL");
        await exited;
      }
    },
  };
}

function signalNumber(sig: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig] ?? 1;
}
