// A sidecar proxy, assembled: identity (certificate by CSR) → app-facing listeners (outbound,
// explicit upstream ports — HTTP or TCP by the service port's protocol —, admin) → config stream → inbound mTLS listener. Ready when it has a
// certificate, a snapshot and every listener is up; it registers as not serving and becomes an
// endpoint only once it is ready and its app accepts connections (serving.ts). When the snapshot asks
// for it, the agent also checks its app's health and reports it upstream (health-check.ts).
//
// Draining, in this order (docs/proxy.md, "Lifecycle"):
//   1. leave the endpoints (serving: false); the control plane pushes that to every caller;
//   2. keep serving in-flight and late requests for the drain delay, while callers catch up;
//   3. stop the app, if this sidecar runs one (`weft run`), and wait for it to exit (its outbound
//      calls still go through us);
//   4. deregister (bye), stop accepting, finish in-flight requests (bounded), close.

import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { logSafe } from "../../model/log-safe.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { callApi, type ApiTarget } from "../../client/api-client.ts";
import { createAdminServer } from "../admin/server.ts";
import {
  createAdminToken,
  defaultAdminTokenFile,
  removeAdminTokenFile,
  writeAdminTokenFile,
} from "../admin/admin-token.ts";
import { createInboundListener } from "../inbound/listener.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { createOutboundListener } from "../outbound/listener.ts";
import { inboundTunnelHandler } from "../tcp/inbound-tunnel.ts";
import { TCP_TUNNEL_ALPN } from "../tcp/tunnel-protocol.ts";
import { TcpProxy } from "../tcp/tcp-proxy.ts";
import { UpstreamPort } from "../tcp/upstream-port.ts";
import { withRetry } from "./backoff.ts";
import { CERT_BACKOFF, CertificateManager, DEFAULT_START_DEADLINE_MS } from "./certificates.ts";
import { ConfigClient } from "./config-client.ts";
import { AppHealth } from "./health-check.ts";
import { tuneHeapForProxy } from "./heap-tuning.ts";
import { DEFAULT_DRAIN_DELAY_MS, DEFAULT_DRAIN_TIMEOUT_MS } from "./lifecycle-defaults.ts";
import { ServingGate } from "./serving.ts";
import { SnapshotCell } from "./snapshot-cell.ts";
import { Subscriptions } from "./subscriptions.ts";

export interface ProxyOptions {
  service: string;
  namespace?: string;
  /** The local app's port. */
  appPort: number;
  /** Address the inbound listener binds and advertises (default 127.0.0.1). */
  address?: string;
  inboundPort?: number;
  outboundPort?: number;
  adminPort?: number;
  /** Where to write the admin token (0600); default `<dataDir>/proxy-admin-<admin port>.token`. */
  adminTokenFile?: string;
  /** Directory for the proxy's local files (default .weft). */
  dataDir?: string;
  /**
   * Explicit upstream ports: 127.0.0.1:port → a service port (default the service's first). A `tcp`
   * service port is proxied as TCP, any other as HTTP (../tcp/upstream-port.ts).
   */
  upstreams?: { service: string; port: number; servicePort?: number }[];
  /** App ports of the Service's ports other than the first, by service port number or name. */
  appPorts?: Record<string, number>;
  labels?: Record<string, string>;
  zone?: string;
  /**
   * Services to pre-load ("name" or "name.namespace"); any other destination is subscribed to on its
   * first request (subscriptions.ts). ["*"]: the whole mesh, pushed up front (no on-demand).
   */
  reach?: string[];
  /** On demand: how long a first request waits for its destination's config (ms, default 3 s). */
  discoveryTimeoutMs?: number;
  /** On demand: a destination not called for this long is unsubscribed (ms, default 10 min). */
  subscriptionIdleMs?: number;
  controlPlane: { server: string; stream: string; ca: string };
  token: string;
  log?: (msg: string) => void;
  /**
   * How long draining keeps serving after leaving the endpoints, so that callers get the control
   * plane's push and stop sending before anything closes (ms, default DEFAULT_DRAIN_DELAY_MS).
   */
  drainDelayMs?: number;
  /** How long draining waits for in-flight requests once the app is stopped (ms, default DEFAULT_DRAIN_TIMEOUT_MS). */
  drainTimeoutMs?: number;
  /** Both listeners' wait for response headers where no route timeout applies (ms; default none). */
  responseHeadersTimeoutMs?: number;
  /** Idle timeout of upgraded (WebSocket, ...) connections on every listener (ms; default 1 h). */
  upgradeIdleTimeoutMs?: number;
}

/** The app a sidecar runs (`weft run`): draining stops it once callers have left. */
export interface ManagedApp {
  /** Settles when the app has exited. */
  exited: Promise<unknown>;
  /** Asks the app to stop and resolves once it has exited (forcibly, after its grace period). */
  stop(): Promise<void>;
}

export interface RunningProxy {
  outboundPort: number;
  inboundPort: number;
  adminPort: number;
  /** The bearer token POST /drain needs, and the file it was written to (undefined if that failed). */
  adminToken: string;
  adminTokenFile: string | undefined;
  upstreamPorts: Record<string, number>;
  identity: string;
  ready(): boolean;
  /** Resolves once ready (certificate, first snapshot, every listener up); rejects if a listener cannot bind. */
  whenReady: Promise<void>;
  /** Whether peers may send to this instance: ready, and its app accepts connections. */
  serving(): boolean;
  /** The app this sidecar runs: draining stops it after leaving the endpoints (see the top). */
  manage(app: ManagedApp): void;
  /** Runs the drain sequence (once; later calls get the same promise). */
  drain(): Promise<void>;
  /** Settles once drained and closed, whoever started it: a signal, POST /drain, the app's exit. */
  stopped: Promise<void>;
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`weft proxy[${opts.service}]: ${m}\n`));
  tuneHeapForProxy();
  const address = opts.address ?? "127.0.0.1";
  const target: ApiTarget = { server: opts.controlPlane.server, ca: opts.controlPlane.ca, token: opts.token };

  // A busy or restarting control plane (a start storm) is waited for, with jittered backoff.
  const onStartRetry = (err: Error, delayMs: number) =>
    log(`control plane busy or unreachable (${logSafe(err.message)}); retrying in ${delayMs} ms`);
  const { identity } = await withRetry(
    () => callApi<{ identity: string }>(target, "GET", "/api/v1/identity"),
    { policy: CERT_BACKOFF, deadlineMs: DEFAULT_START_DEADLINE_MS, onRetry: onStartRetry },
  );
  const certs = new CertificateManager(target, identity, { onStartRetry });
  certs.onError = (err) => log(`certificate renewal failed (will retry): ${logSafe(err.message)}`);
  await certs.start();

  const metrics = new ProxyMetrics();
  // Listeners compile each snapshot and swap it in all at once; the client ACKs only after that.
  const snapshot = new SnapshotCell();
  const firstConfig = new Promise<ProxySnapshot>((resolve) => {
    const off = snapshot.subscribe((s) => {
      off();
      resolve(s);
    });
  });
  const timeouts =
    opts.responseHeadersTimeoutMs === undefined ? {} : { responseHeadersMs: opts.responseHeadersTimeoutMs };
  const listenerOpts = {
    config: snapshot,
    tls: certs.material,
    metrics,
    timeouts,
    log,
    upgradeIdleTimeoutMs: opts.upgradeIdleTimeoutMs,
  };
  const tunnels = {
    [TCP_TUNNEL_ALPN]: inboundTunnelHandler({ config: snapshot, tls: certs.material, metrics }),
  };
  const inbound = createInboundListener({ ...listenerOpts, alpn: tunnels });
  // TCP to tcp service ports, shared by the outbound listener (CONNECT) and the --upstream ports.
  const tcp = new TcpProxy({ config: snapshot, tls: certs.material, metrics, log });
  // On demand unless told to take the whole mesh: the pre-loads are --reach and the --upstream ports' services.
  const onDemand = !(opts.reach ?? []).includes("*");
  const preload = [...new Set([...(opts.reach ?? []), ...(opts.upstreams ?? []).map((u) => u.service)])];
  let client: ConfigClient | undefined = undefined;
  const subscriptions = onDemand
    ? new Subscriptions({
        config: snapshot,
        send: {
          subscribe: (names) => client?.subscribe(names),
          unsubscribe: (names) => client?.unsubscribe(names),
        },
        lookup: (name) => outbound.table?.hosts.get(name),
        metrics,
        timeoutMs: opts.discoveryTimeoutMs,
        idleMs: opts.subscriptionIdleMs,
      })
    : undefined;
  const outbound = createOutboundListener({ ...listenerOpts, tcp, subscriptions });
  const upstreams = (opts.upstreams ?? []).map((u) => {
    const http = createOutboundListener({
      ...listenerOpts,
      upstream: u.service,
      upstreamPort: u.servicePort,
    });
    const port = new UpstreamPort({
      tcp,
      service: u.service,
      servicePort: u.servicePort,
      http: (socket) => http.accept(socket),
    });
    return { u, l: port, http };
  });
  let draining = false;
  let inboundUp = false;
  const isReady = () => !draining && inboundUp && !!certs.material.current() && !!snapshot.current();
  const adminToken = createAdminToken();
  const admin = createAdminServer({
    token: adminToken,
    metrics,
    config: snapshot,
    tls: certs.material,
    isReady,
    onDrain: () => drain(),
    clusters: () => outbound.describeClusters(),
    subscriptions: subscriptions && (() => subscriptions.names()),
  });

  const outAddr = await outbound.listen(opts.outboundPort ?? 15001, "127.0.0.1");
  const upstreamPorts: Record<string, number> = {};
  for (const { u, l } of upstreams) {
    const name = u.servicePort === undefined ? u.service : `${u.service}:${u.servicePort}`;
    upstreamPorts[name] = (await l.listen(u.port, "127.0.0.1")).port;
  }
  const adminAddr = await admin.listen(opts.adminPort ?? 15090, "127.0.0.1");
  let adminTokenFile: string | undefined =
    opts.adminTokenFile ?? defaultAdminTokenFile(opts.dataDir ?? ".weft", adminAddr.port);
  try {
    await writeAdminTokenFile(adminTokenFile, adminToken);
  } catch (err) {
    log(
      `cannot write the admin token to ${adminTokenFile} (${(err as Error).message}); POST /drain is unavailable`,
    );
    adminTokenFile = undefined;
  }

  // The inbound listener is what peers reach. On a fixed port it binds only once the config is in:
  // callers that still hold a restarted instance's old registration then see a refused connection,
  // which they retry elsewhere, not a 503 not_ready. Port 0 binds now to learn its port — a fresh one
  // that no stale registration names.
  const bindInbound = async (port: number) => {
    const a = await inbound.listen(port, address);
    inboundUp = true;
    return a.port;
  };
  const inPort = opts.inboundPort === 0 ? await bindInbound(0) : (opts.inboundPort ?? 15006);

  const workload = `${opts.service}-${createHash("sha256").update(`${hostname()}:${address}:${inPort}`).digest("hex").slice(0, 8)}`;
  client = new ConfigClient({
    snapshot,
    url: opts.controlPlane.stream,
    ca: opts.controlPlane.ca,
    tls: certs.material,
    log,
    onReject: (r) => metrics.configRejected.series(r.reason).value++,
    hello: {
      workload,
      address,
      port: inPort,
      appPort: opts.appPort,
      appPorts: opts.appPorts,
      labels: opts.labels,
      zone: opts.zone,
      ...(onDemand ? { reach: preload, onDemand: true } : {}),
      serving: false,
    },
    subscriptions: subscriptions && (() => subscriptions.names()),
  });
  const stream = client;
  const appHealth = new AppHealth({
    config: snapshot,
    metrics,
    log,
    report: (healthy, detail) => stream.reportHealth(healthy, detail),
  });
  const gate = new ServingGate({
    sidecarReady: isReady,
    config: snapshot,
    log,
    report: (serving) => stream.reportServing(serving),
  });
  const whenReady = firstConfig.then(async () => {
    if (!inboundUp && !draining) await bindInbound(inPort);
    if (draining) throw new Error("the proxy is draining");
    gate.poke();
  });
  whenReady.catch(() => {}); // the caller awaits it; a failure also surfaces there
  stream.start();
  gate.start();

  let app: ManagedApp | undefined;
  let draining$: Promise<void> | undefined;
  let stoppedResolve!: () => void;
  const stopped = new Promise<void>((r) => (stoppedResolve = r));
  const drain = (): Promise<void> => (draining$ ??= shutdown().finally(stoppedResolve));

  async function shutdown(): Promise<void> {
    draining = true;
    // 1–2. Out of the endpoints, then serve on until callers have caught up — unless nobody ever
    // had us as an endpoint, or the app is gone anyway.
    if (gate.leave("draining")) {
      log(
        `draining: left the endpoints; serving in-flight and late requests for ${opts.drainDelayMs ?? DEFAULT_DRAIN_DELAY_MS} ms`,
      );
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise((r) => (timer = setTimeout(r, opts.drainDelayMs ?? DEFAULT_DRAIN_DELAY_MS))),
        ...(app ? [app.exited] : []),
      ]);
      clearTimeout(timer);
    }
    // 3. The app stops while its sidecar still carries its outbound calls.
    if (app) await app.stop();
    // 4.
    appHealth.stop();
    subscriptions?.stop();
    await stream.stop(true);
    certs.stop();
    const timeout = opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    await Promise.race([
      Promise.all([
        inbound.drain(),
        outbound.drain(),
        ...upstreams.flatMap(({ l, http }) => [l.drain(), http.drain()]),
        tcp.drain(timeout),
      ]),
      new Promise((r) => setTimeout(r, timeout).unref()),
    ]);
    await Promise.all([
      inbound.close(),
      outbound.close(),
      ...upstreams.flatMap(({ l, http }) => [l.close(), http.close()]),
      tcp.close(),
      admin.close(),
      adminTokenFile && removeAdminTokenFile(adminTokenFile, adminToken).catch(() => {}),
    ]);
  }

  return {
    outboundPort: outAddr.port,
    inboundPort: inPort,
    adminPort: adminAddr.port,
    adminToken,
    adminTokenFile,
    upstreamPorts,
    identity,
    ready: isReady,
    whenReady,
    serving: () => gate.serving,
    manage: (a) => void (app = a),
    drain,
    stopped,
  };
}
