// Wires the control plane together: store → mesh state → snapshot cache (compiler) → config stream; CA and token
// issuer; the config API. On first start it writes the admin credential and a CLI config into the
// data directory so that the local `weft` CLI just works.

import { randomBytes } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import type { AddressInfo, Server } from "node:net";
import { join } from "node:path";
import { DEFAULT_TRUST_DOMAIN } from "../model/resources.ts";
import { CertificateAuthority } from "../pki/ca.ts";
import { writeFileAtomic } from "../pki/fs-atomic.ts";
import { TokenIssuer } from "../pki/tokens.ts";
import { openEmbeddedStore } from "../store/embedded/index.ts";
import type { Clock, Store } from "../store/store.ts";
import { createApiServer } from "./api/server.ts";
import type { SigningLimits } from "./api/signing-limits.ts";
import { LoopLag } from "./loop-lag.ts";
import { ControlPlaneMetrics, newPushStats } from "./metrics.ts";
import { MeshStateCache } from "./mesh-state.ts";
import { StaticHealth } from "./static-health.ts";
import { createStreamServer, type StreamAdmissionLimits, type StreamServer } from "./stream/server.ts";
import { SnapshotCache } from "./stream/snapshot-cache.ts";
import { writeCliConfig } from "../client/cli-config.ts";

export interface ControlPlaneOptions {
  dataDir: string;
  /** host:port of the config API (default 127.0.0.1:15000; port 0 picks one). */
  listen?: string;
  /** host:port of the proxy config stream (default 127.0.0.1:15010). */
  streamListen?: string;
  trustDomain?: string;
  caCertFile?: string;
  caKeyFile?: string;
  graceSeconds?: number;
  debounceMs?: number;
  /** Lifetime of workload certificates (seconds); default 24 h. */
  certTtlSeconds?: number;
  /** Use this store instead of the embedded one in dataDir (tests, later etcd). */
  store?: Store;
  /** Time for the config stream's liveness pings; tests pass the manual clock their store runs on. */
  clock?: Clock;
  /** Certificate signing's rate limit and queue (defaults in api/signing-limits.ts). */
  signing?: Partial<SigningLimits>;
  /** Admission of new config streams (defaults in stream/server.ts). */
  streamAdmission?: Partial<StreamAdmissionLimits>;
}

export interface ControlPlane {
  apiUrl: string;
  streamUrl: string;
  adminToken: string;
  ca: CertificateAuthority;
  state: MeshStateCache;
  /** Every connected proxy's current snapshot: what the config stream (and later xDS) serves. */
  snapshots: SnapshotCache;
  stream: StreamServer;
  close(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const dir = opts.dataDir;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const store = opts.store ?? (await openEmbeddedStore(join(dir, "store")));
  const state = new MeshStateCache(store);
  await state.start();
  const trustDomain = () => state.state().mesh?.spec.trustDomain ?? opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const ca = await CertificateAuthority.loadOrCreate(dir, {
    trustDomain: opts.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    certFile: opts.caCertFile,
    keyFile: opts.caKeyFile,
  });
  const tokens = await TokenIssuer.loadOrCreate(dir);
  const adminToken = await loadOrCreateAdminToken(dir);
  const serverCert = await ca.issueServerCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const tls = { keyPem: serverCert.keyPem, certPem: serverCert.chainPem };

  // One measure of the control plane's own stalls, so neither API clients nor proxies pay for them.
  const lag = new LoopLag({ clock: opts.clock }).start();
  const pushStats = newPushStats();
  const api = createApiServer({
    // Scraped only once listening, by when `metrics` (below, it reads the stream server) exists.
    metrics: () => metrics.render(),
    lag,
    signing: opts.signing,
    store,
    state,
    ca,
    tokens,
    adminToken,
    tls,
    trustDomain,
    certTtlSeconds: opts.certTtlSeconds,
  });
  const snapshots = new SnapshotCache({ state, debounceMs: opts.debounceMs ?? 20 });
  const stream = createStreamServer({
    store,
    cache: snapshots,
    tls: { ...tls, trustBundlePem: ca.trustBundlePem },
    graceSeconds: opts.graceSeconds ?? 10,
    clock: opts.clock,
    lag,
    admission: opts.streamAdmission,
    pushStats,
  });
  const metrics = new ControlPlaneMetrics({
    state,
    snapshots,
    connectedProxies: () => stream.sessions().length,
    pushes: pushStats,
    admission: { stream: () => stream.admission.stats, signing: () => api.signing.stats },
    certificatesSigned: () => api.stats.signed,
    stalledMs: () => lag.stalledMs(),
  });
  let apiAddr: AddressInfo, streamAddr: AddressInfo;
  try {
    apiAddr = await listen(api, opts.listen ?? "127.0.0.1:15000");
    streamAddr = await listen(stream.server, opts.streamListen ?? "127.0.0.1:15010");
  } catch (err) {
    // Whatever did start is stopped, so a failed start leaves nothing running.
    if (api.listening) await new Promise((r) => api.close(r));
    lag.stop();
    metrics.stop();
    snapshots.stop();
    state.stop();
    if (!opts.store) await store.close();
    throw err;
  }
  const apiUrl = `https://${apiAddr.address}:${apiAddr.port}`;
  const streamUrl = `https://${streamAddr.address}:${streamAddr.port}`;
  await writeCliConfig(dir, { server: apiUrl, stream: streamUrl, token: adminToken, ca: ca.trustBundlePem });
  // Sidecar-less Workloads are health-checked from here (their TrafficPolicy's healthCheck).
  const staticHealth = new StaticHealth({ store, state, log: (m) => console.error(m) });
  staticHealth.start();

  return {
    apiUrl,
    streamUrl,
    adminToken,
    ca,
    state,
    snapshots,
    stream,
    async close() {
      staticHealth.stop();
      api.closeAllConnections();
      await Promise.all([new Promise((r) => api.close(r)), stream.close()]);
      lag.stop();
      metrics.stop();
      snapshots.stop();
      state.stop();
      if (!opts.store) await store.close();
    },
  };
}

async function loadOrCreateAdminToken(dir: string): Promise<string> {
  const path = join(dir, "admin.token");
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const token = `weft_admin_${randomBytes(24).toString("base64url")}`;
  await writeFileAtomic(path, token + "\n", 0o600);
  return token;
}

const LISTEN_BACKLOG = 4096;

function listen(server: Server, hostPort: string): Promise<AddressInfo> {
  const i = hostPort.lastIndexOf(":");
  const host = i > 0 ? hostPort.slice(0, i) : "127.0.0.1";
  const port = Number(i >= 0 ? hostPort.slice(i + 1) : hostPort);
  return new Promise((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `cannot listen on ${host}:${port}: ${err.code === "EADDRINUSE" ? "address already in use" : err.message}`,
        ),
      ),
    );
    // A deep accept backlog: after a restart every proxy connects at once, and connections the kernel
    // drops for a full backlog come back as failed handshakes and retries (it caps this at somaxconn).
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve(server.address() as AddressInfo));
  });
}
