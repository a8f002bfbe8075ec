import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { CliError, type Command } from "../command.ts";
import { proxyFlags, proxyOptions, resolveProxyOptions } from "../proxy-flags.ts";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;

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
  flags: [...proxyFlags, ["--ready-timeout MS", "give up if the proxy is not ready in time (default 10000)"]],
  options: { ...proxyOptions, "ready-timeout": { type: "string" } },
  async run(v, _pos, rest) {
    if (rest.length === 0)
      throw new CliError(
        "missing the app's command after --",
        "e.g. weft run --service orders --port 3000 -- node orders.js",
        2,
      );
    const opts = await resolveProxyOptions(v);
    const proxy = await (await import("../../proxy/agent/proxy.ts")).startProxy(opts);
    const timeoutMs = Number(v["ready-timeout"] ?? 10_000);
    const timedOut = await Promise.race([
      proxy.firstConfig.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), timeoutMs).unref()),
    ]);
    if (timedOut || !proxy.ready()) {
      await proxy.drain();
      throw new CliError(
        `proxy not ready after ${timeoutMs} ms (no config from the control plane); the app was not started`,
      );
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
      env[`WEFT_UPSTREAM_${svc.toUpperCase().replace(/-/g, "_")}`] = `127.0.0.1:${port}`;
    delete env.WEFT_TOKEN; // the app does not need the join token
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
    const forward = (sig: NodeJS.Signals) => () => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        child.kill(sig);
      }
    };
    const handlers = SIGNALS.map((sig) => [sig, forward(sig)] as const);
    for (const [sig, h] of handlers) process.on(sig, h);
    const code = await new Promise<number>((resolve) => {
      child.on("error", (err) => {
        process.stderr.write(`weft run: cannot start ${rest[0]}: ${err.message}\n`);
        resolve(127);
      });
      child.on("exit", (c, sig) => resolve(c ?? 128 + (sig ? signalNumber(sig) : 1)));
    });
    for (const [sig, h] of handlers) process.off(sig, h);
    await proxy.drain();
    return code;
  },
};

function signalNumber(sig: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig] ?? 1;
}
