// Flags shared by `weft proxy` and `weft run`, and how they become ProxyOptions: where the control
// plane is (flags, or the local CLI config), and the join token (--token-file, $WEFT_TOKEN, or — on the
// control plane's own host — one minted with the local admin credential).

import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { callApi } from "../client/api-client.ts";
import { DEFAULT_DATA_DIR, readCliConfig } from "../client/cli-config.ts";
import { DEFAULT_NAMESPACE } from "../model/resources.ts";
import type { ProxyOptions } from "../proxy/agent/proxy.ts";
import { DEFAULT_DRAIN_DELAY_MS } from "../proxy/agent/lifecycle-defaults.ts";
import { DEFAULT_DISCOVERY_TIMEOUT_MS, DEFAULT_SUBSCRIPTION_IDLE_MS } from "../proxy/agent/subscriptions.ts";
import { CliError, durationFlag, pairs, portFlag, type Options } from "./command.ts";

export const proxyOptions: Options = {
  service: { type: "string", short: "s" },
  namespace: { type: "string", short: "n" },
  port: { type: "string", short: "p" },
  address: { type: "string" },
  "inbound-port": { type: "string" },
  "outbound-port": { type: "string" },
  "admin-port": { type: "string" },
  "admin-token-file": { type: "string" },
  "drain-delay": { type: "string" },
  upstream: { type: "string", multiple: true },
  "app-port": { type: "string", multiple: true },
  label: { type: "string", short: "l", multiple: true },
  zone: { type: "string" },
  reach: { type: "string", multiple: true },
  "discovery-timeout": { type: "string" },
  "subscription-idle": { type: "string" },
  "token-file": { type: "string" },
  config: { type: "string" },
  server: { type: "string" },
  stream: { type: "string" },
  "ca-file": { type: "string" },
  "response-headers-timeout": { type: "string" },
  "upgrade-idle-timeout": { type: "string" },
};

export const proxyFlags: [string, string][] = [
  ["-s, --service NAME", "the service this instance belongs to (required)"],
  ["-p, --port PORT", "the app's port on 127.0.0.1 (required)"],
  ["-n, --namespace NS", `namespace, when minting a local token (default ${DEFAULT_NAMESPACE})`],
  ["-l, --label K=V", "workload label, e.g. version=v2 (repeatable)"],
  [
    "--upstream SVC[:SVCPORT]=PORT",
    "bind 127.0.0.1:PORT to service SVC (its port SVCPORT; default its first); tcp ports are proxied as TCP (repeatable)",
  ],
  [
    "--app-port SVCPORT=PORT",
    "the app serves the Service port SVCPORT (number or name) on PORT; default: the first port on --port, others on their own number (repeatable)",
  ],
  [
    "--reach SVC",
    "pre-load this service's config (repeatable); others are fetched on their first call. '*' = the whole mesh up front",
  ],
  [
    "--discovery-timeout DURATION",
    `how long a first call to a service waits for its config (default ${DEFAULT_DISCOVERY_TIMEOUT_MS / 1000}s)`,
  ],
  [
    "--subscription-idle DURATION",
    `forget a service's config after it was not called for this long (default ${DEFAULT_SUBSCRIPTION_IDLE_MS / 60_000}m)`,
  ],
  ["--inbound-port PORT", "mTLS inbound listener (default 15006; 0 = any free port)"],
  ["--outbound-port PORT", "outbound listener for HTTP_PROXY (default 15001; 0 = any)"],
  ["--admin-port PORT", "admin: /ready /metrics /config (default 15090; 0 = any)"],
  [
    "--admin-token-file FILE",
    "where to write the token POST /drain needs (default proxy-admin-<port>.token beside the config)",
  ],
  [
    "--drain-delay DURATION",
    `on stop, serve on this long after leaving the endpoints, before the app is stopped and listeners close (default ${DEFAULT_DRAIN_DELAY_MS / 1000}s)`,
  ],
  ["--address IP", "address the inbound listener binds and advertises (default 127.0.0.1)"],
  ["--zone ZONE", "locality of this instance"],
  ["--token-file FILE", "join token (default $WEFT_TOKEN, or minted with the local admin config)"],
  [
    "--config FILE",
    "CLI config with the control plane's URLs and CA (default $WEFT_CONFIG or ./.weft/config.json)",
  ],
  ["--server URL", "control plane config API (default from the config)"],
  ["--stream URL", "control plane config stream (default from the config)"],
  ["--ca-file FILE", "PEM bundle that verifies the control plane (default from the config)"],
  [
    "--response-headers-timeout DURATION",
    "wait for response headers when no route timeout applies, e.g. 30s (default: no limit)",
  ],
  [
    "--upgrade-idle-timeout DURATION",
    "close an upgraded (WebSocket, ...) connection with no bytes either way for this long (default 1h)",
  ],
];

export async function resolveProxyOptions(v: Record<string, unknown>): Promise<ProxyOptions> {
  if (!v.service) throw new CliError("--service is required", "e.g. --service reviews --port 9080", 2);
  if (v.port === undefined)
    throw new CliError("--port (the app's port) is required", "e.g. --service reviews --port 9080", 2);
  const service = v.service as string;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(service))
    throw new CliError(
      `--service "${service}" is not a valid name (lowercase letters, digits, '-')`,
      undefined,
      2,
    );
  const namespace = (v.namespace as string) ?? DEFAULT_NAMESPACE;
  const drainDelayMs = durationFlag(v["drain-delay"], "--drain-delay", DEFAULT_DRAIN_DELAY_MS);
  const responseHeadersTimeoutMs = durationFlag(
    v["response-headers-timeout"],
    "--response-headers-timeout",
    undefined,
  );
  const upgradeIdleTimeoutMs = durationFlag(v["upgrade-idle-timeout"], "--upgrade-idle-timeout", undefined);
  if (upgradeIdleTimeoutMs === 0)
    throw new CliError("--upgrade-idle-timeout must be more than 0", 'e.g. "10m" or "1h"', 2);
  const found = await readCliConfig(v.config as string | undefined).catch((e: Error) => {
    throw new CliError(e.message);
  });
  const cfg = found?.config;
  const server = (v.server as string) ?? cfg?.server;
  const stream = (v.stream as string) ?? cfg?.stream;
  const ca = v["ca-file"] ? await readFile(v["ca-file"] as string, "utf8") : cfg?.ca;
  if (!server || !stream || !ca) {
    throw new CliError(
      "don't know where the control plane is",
      "pass --server, --stream and --ca-file, or --config FILE (the control plane writes .weft/config.json)",
      2,
    );
  }
  let token = process.env.WEFT_TOKEN;
  if (v["token-file"]) token = (await readFile(v["token-file"] as string, "utf8")).trim();
  if (!token && cfg?.token) {
    const out = await callApi<{ token: string }>({ server, ca, token: cfg.token }, "POST", "/api/v1/tokens", {
      service,
      namespace,
    });
    token = out.token;
  }
  if (!token)
    throw new CliError(
      "no join token",
      "pass --token-file FILE or set WEFT_TOKEN (create one with `weft token create --service NAME`)",
      2,
    );
  return {
    service,
    namespace,
    appPort: portFlag(v.port, "--port"),
    address: v.address as string | undefined,
    inboundPort: v["inbound-port"] === undefined ? undefined : portFlag(v["inbound-port"], "--inbound-port"),
    outboundPort:
      v["outbound-port"] === undefined ? undefined : portFlag(v["outbound-port"], "--outbound-port"),
    adminPort: v["admin-port"] === undefined ? undefined : portFlag(v["admin-port"], "--admin-port"),
    adminTokenFile: v["admin-token-file"] as string | undefined,
    dataDir: found ? dirname(found.path) : DEFAULT_DATA_DIR,
    drainDelayMs,
    upstreams: pairs(v.upstream, "--upstream").map(([target, port]) => upstreamFlag(target, port)),
    appPorts: appPortsFlag(v["app-port"]),
    labels: Object.fromEntries(pairs(v.label, "--label")),
    zone: v.zone as string | undefined,
    reach: reachFlag(v.reach),
    discoveryTimeoutMs: positiveDuration(v["discovery-timeout"], "--discovery-timeout"),
    subscriptionIdleMs: positiveDuration(v["subscription-idle"], "--subscription-idle"),
    responseHeadersTimeoutMs,
    upgradeIdleTimeoutMs,
    controlPlane: { server, stream, ca },
    token,
  };
}

/** `--reach SVC` (repeatable): service names, or '*' alone for the whole mesh. */
function reachFlag(v: unknown): string[] | undefined {
  const list = v as string[] | undefined;
  if (list === undefined) return undefined;
  for (const r of list) {
    if (r === "*") continue;
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$/.test(r))
      throw new CliError(
        `--reach ${JSON.stringify(r)} is not a service name ("name" or "name.namespace") or '*'`,
        undefined,
        2,
      );
  }
  if (list.includes("*") && list.length > 1)
    throw new CliError("--reach '*' (the whole mesh) cannot be combined with service names", undefined, 2);
  return list;
}

function positiveDuration(v: unknown, flag: string): number | undefined {
  const ms = durationFlag(v, flag, undefined);
  if (ms !== undefined && ms <= 0) throw new CliError(`${flag} must be more than 0`, undefined, 2);
  return ms;
}

/** `--upstream SVC[:SVCPORT]=PORT`. */
function upstreamFlag(target: string, port: string): { service: string; port: number; servicePort?: number } {
  const [service, svcPort, ...rest] = target.split(":");
  if (rest.length > 0 || service === "" || svcPort === "")
    throw new CliError(
      `--upstream expects SVC=PORT or SVC:SVCPORT=PORT, got "${target}=${port}"`,
      undefined,
      2,
    );
  const out = { service, port: portFlag(port, "--upstream") };
  if (svcPort === undefined) return out;
  const servicePort = portFlag(svcPort, `--upstream ${service}:`);
  if (servicePort === 0)
    throw new CliError(`--upstream ${target}: the service port must be 1-65535`, undefined, 2);
  return { ...out, servicePort };
}

/** `--app-port SVCPORT=PORT` (repeatable): SVCPORT is a Service port's number or name. */
function appPortsFlag(values: unknown): Record<string, number> | undefined {
  const list = pairs(values, "--app-port");
  if (list.length === 0) return undefined;
  const out: Record<string, number> = {};
  for (const [key, port] of list) {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(key))
      throw new CliError(
        `--app-port ${key}=${port}: "${key}" is not a port number or name`,
        "e.g. --app-port grpc=9090",
        2,
      );
    const n = portFlag(port, `--app-port ${key}=`);
    if (n === 0) throw new CliError(`--app-port ${key}=${port}: the app port must be 1-65535`, undefined, 2);
    out[key] = n;
  }
  return out;
}
