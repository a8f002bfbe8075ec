// A sidecar proxy, assembled: identity (certificate by CSR) → listeners (inbound mTLS, outbound,
// explicit upstream ports, admin) → config stream. Ready when it has a certificate, a snapshot and
// every listener is up. Draining deregisters first, so peers stop sending before listeners close.
// When the snapshot asks for it, the agent also checks its app's health and reports it upstream
// (health-check.ts); readiness stays about the sidecar itself.

import { createHash } from "node:crypto";
import { hostname } from "node:os";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { callApi, type ApiTarget } from "../../client/api-client.ts";
import { createAdminServer } from "../admin/server.ts";
import { createInboundListener } from "../inbound/listener.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { createOutboundListener } from "../outbound/listener.ts";
import { CertificateManager } from "./certificates.ts";
import { Cell } from "./cell.ts";
import { ConfigClient } from "./config-client.ts";
import { AppHealth } from "./health-check.ts";
import { tuneHeapForProxy } from "./heap-tuning.ts";

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
  /** Explicit upstream ports: 127.0.0.1:port → service. */
  upstreams?: { service: string; port: number }[];
  labels?: Record<string, string>;
  zone?: string;
  reach?: string[];
  controlPlane: { server: string; stream: string; ca: string };
  token: string;
  log?: (msg: string) => void;
  /** How long draining waits for in-flight requests (ms). */
  drainTimeoutMs?: number;
  /** Both listeners' wait for response headers where no route timeout applies (ms; default none). */
  responseHeadersTimeoutMs?: number;
}

export interface RunningProxy {
  outboundPort: number;
  inboundPort: number;
  adminPort: number;
  upstreamPorts: Record<string, number>;
  identity: string;
  ready(): boolean;
  /** Resolves once the first config snapshot is in. */
  firstConfig: Promise<ProxySnapshot>;
  drain(): Promise<void>;
}

export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`weft proxy[${opts.service}]: ${m}\n`));
  tuneHeapForProxy();
  const address = opts.address ?? "127.0.0.1";
  const target: ApiTarget = { server: opts.controlPlane.server, ca: opts.controlPlane.ca, token: opts.token };

  const { identity } = await callApi<{ identity: string }>(target, "GET", "/api/v1/identity");
  const certs = new CertificateManager(target, identity);
  certs.onError = (err) => log(`certificate renewal failed (will retry): ${err.message}`);
  await certs.start();

  const metrics = new ProxyMetrics();
  const snapshot = new Cell<ProxySnapshot>();
  const firstConfig = new Promise<ProxySnapshot>((resolve) => {
    const off = snapshot.subscribe((s) => {
      off();
      resolve(s);
    });
  });
  const timeouts =
    opts.responseHeadersTimeoutMs === undefined ? {} : { responseHeadersMs: opts.responseHeadersTimeoutMs };
  const listenerOpts = { config: snapshot, tls: certs.material, metrics, timeouts };
  const inbound = createInboundListener(listenerOpts);
  const outbound = createOutboundListener(listenerOpts);
  const upstreams = (opts.upstreams ?? []).map((u) => ({
    u,
    l: createOutboundListener({ ...listenerOpts, upstream: u.service }),
  }));
  let draining = false;
  const isReady = () => !draining && !!certs.material.current() && !!snapshot.current();
  const admin = createAdminServer({
    metrics,
    config: snapshot,
    tls: certs.material,
    isReady,
    onDrain: () => drain(),
    clusters: () => outbound.describeClusters(),
  });

  const inAddr = await inbound.listen(opts.inboundPort ?? 15006, address);
  const outAddr = await outbound.listen(opts.outboundPort ?? 15001, "127.0.0.1");
  const upstreamPorts: Record<string, number> = {};
  for (const { u, l } of upstreams) upstreamPorts[u.service] = (await l.listen(u.port, "127.0.0.1")).port;
  const adminAddr = await admin.listen(opts.adminPort ?? 15090, "127.0.0.1");

  const workload = `${opts.service}-${createHash("sha256").update(`${hostname()}:${address}:${inAddr.port}`).digest("hex").slice(0, 8)}`;
  const client: ConfigClient = new ConfigClient({
    snapshot,
    url: opts.controlPlane.stream,
    ca: opts.controlPlane.ca,
    tls: certs.material,
    log,
    hello: {
      workload,
      address,
      port: inAddr.port,
      appPort: opts.appPort,
      labels: opts.labels,
      zone: opts.zone,
      reach: opts.reach,
    },
  });
  const appHealth = new AppHealth({
    config: snapshot,
    metrics,
    log,
    report: (healthy, detail) => client.reportHealth(healthy, detail),
  });
  client.start();

  async function drain(): Promise<void> {
    if (draining) return;
    draining = true;
    appHealth.stop();
    await client.stop(true);
    certs.stop();
    const timeout = opts.drainTimeoutMs ?? 5_000;
    await Promise.race([
      Promise.all([inbound.drain(), outbound.drain(), ...upstreams.map(({ l }) => l.drain())]),
      new Promise((r) => setTimeout(r, timeout).unref()),
    ]);
    await Promise.all([
      inbound.close(),
      outbound.close(),
      ...upstreams.map(({ l }) => l.close()),
      admin.close(),
    ]);
  }

  return {
    outboundPort: outAddr.port,
    inboundPort: inAddr.port,
    adminPort: adminAddr.port,
    upstreamPorts,
    identity,
    ready: isReady,
    firstConfig,
    drain,
  };
}
