// A mesh for end-to-end tests: a control plane process, sidecar proxy processes, and apps.

import { readFileSync } from "node:fs";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after } from "node:test";
import { spawnWeft, tempDir, weft, type Spawned } from "./processes.ts";

// Registered at load time: `after` called inside a hook would run when that hook ends.
const apps = new Set<Server>();
after(() => {
  for (const s of apps) {
    s.closeAllConnections();
    s.close();
  }
});

export interface ControlPlaneProcess extends Spawned {
  dataDir: string;
  configPath: string;
  apiPort: number;
  streamPort: number;
  env: NodeJS.ProcessEnv;
}

export async function startControlPlane(
  opts: {
    dataDir?: string;
    apiPort?: number;
    streamPort?: number;
    extra?: string[];
    /** Extra environment for the control plane process (not passed on to proxies). */
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<ControlPlaneProcess> {
  const dataDir = opts.dataDir ?? tempDir("weft-cp-");
  const p = spawnWeft(
    [
      "control-plane",
      "--data-dir",
      dataDir,
      "--listen",
      `127.0.0.1:${opts.apiPort ?? 0}`,
      "--stream-listen",
      `127.0.0.1:${opts.streamPort ?? 0}`,
      "--grace-period",
      "2",
      ...(opts.extra ?? []),
    ],
    opts.env,
  );
  const m = await p.waitFor(
    /config API https:\/\/127\.0\.0\.1:(\d+), proxy stream https:\/\/127\.0\.0\.1:(\d+)/,
  );
  const configPath = join(dataDir, "config.json");
  return {
    ...p,
    dataDir,
    configPath,
    apiPort: Number(m[1]),
    streamPort: Number(m[2]),
    env: { WEFT_CONFIG: configPath },
  };
}

export interface ProxyProcess extends Spawned {
  outboundPort: number;
  inboundPort: number;
  adminPort: number;
  /** The file holding the token that POST /drain needs. */
  adminTokenFile: string;
}

export async function startProxy(
  cp: ControlPlaneProcess,
  service: string,
  appPort: number,
  extra: string[] = [],
): Promise<ProxyProcess> {
  const p = spawnWeft(
    [
      "proxy",
      "--service",
      service,
      "--port",
      String(appPort),
      "--inbound-port",
      "0",
      "--outbound-port",
      "0",
      "--admin-port",
      "0",
      ...extra,
    ],
    cp.env,
  );
  const m = await p.waitFor(/outbound 127\.0\.0\.1:(\d+), inbound :(\d+), admin 127\.0\.0\.1:(\d+)/);
  const tokenFile = (await p.waitFor(/; admin token in (\S+)/))[1];
  const proxy = {
    ...p,
    outboundPort: Number(m[1]),
    inboundPort: Number(m[2]),
    adminPort: Number(m[3]),
    adminTokenFile: tokenFile,
  };
  await waitUntil(
    async () => (await httpGet(proxy.adminPort, "/ready")).status === 200,
    10_000,
    `${service} proxy ready`,
  );
  return proxy;
}

/** An app that answers every request with JSON naming itself and echoing what it saw. */
export async function startApp(name: string): Promise<{
  port: number;
  server: Server;
  seen: { method: string; url: string; headers: IncomingHttpHeaders }[];
}> {
  const seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    req.resume();
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({ app: name, url: req.url, xfcc: req.headers["x-forwarded-client-cert"] ?? null }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  apps.add(server);
  return { port: (server.address() as AddressInfo).port, server, seen };
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * GET through an HTTP proxy port (absolute-form), or a plain GET when `url` is a path. A request
 * that gets no complete answer within 10 s fails rather than hanging the test.
 */
export function httpGet(port: number, url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: url, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url} via :${port}: no answer within 10 s`)));
    req.end();
  });
}

export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function apply(cp: ControlPlaneProcess, yaml: string): Promise<void> {
  const r = await weft(["apply", "-f", "-"], cp.env, yaml);
  if (r.code !== 0) throw new Error(`weft apply failed (${r.code}): ${r.stderr}`);
}

export function readConfig(cp: ControlPlaneProcess): {
  server: string;
  token: string;
  ca: string;
  stream: string;
} {
  return JSON.parse(readFileSync(cp.configPath, "utf8"));
}
