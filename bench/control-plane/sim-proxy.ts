// One simulated sidecar: the real proxy's control-plane side and nothing else. It does what
// startProxy (src/proxy/agent/proxy.ts) does before its listeners matter — asks which identity its join
// token entitles it to, gets a certificate by CSR with a key of its own (CertificateManager), then
// opens the config stream (ConfigClient) with the same hello a `weft proxy` sends — and leaves the data
// plane out: its SnapshotCell has no listeners staged, so a snapshot that passes the consistency check
// is published and ACKed at once. Once its first snapshot runs it reports serving, as the real proxy's
// serving gate does when its app accepts connections.
//
// A start that fails before the certificate (the control plane reset the connection, timed out, said
// 5xx) is retried with backoff, as a supervisor restarts a sidecar that exited; a refusal is final.
// What it records: when the certificate came, when the first snapshot was ACKed, every error the
// control plane ended the stream with (by code, e.g. lease_lost) and every lost stream. Subscribers see
// each published snapshot; publishing and the ACK happen in the same tick (the ACK is written right
// after), so the time a subscriber sees is the ACK's time.

import { callApi, type ApiCallError, type ApiTarget } from "../../src/client/api-client.ts";
import type { ProxySnapshot } from "../../src/model/snapshot.ts";
import { withRetry } from "../../src/proxy/agent/backoff.ts";
import {
  CERT_BACKOFF,
  CertificateManager,
  DEFAULT_START_DEADLINE_MS,
} from "../../src/proxy/agent/certificates.ts";
import { ConfigClient } from "../../src/proxy/agent/config-client.ts";
import { SnapshotCell } from "../../src/proxy/agent/snapshot-cell.ts";
import { Subscriptions } from "../../src/proxy/agent/subscriptions.ts";

/** The simulated mesh's namespace (mesh-shape.ts): bare names resolve in it. */
const SIM_NAMESPACE = "default";

/** Epoch milliseconds with sub-millisecond resolution, comparable between processes on one host. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export interface ControlPlaneTarget {
  /** Config API URL (certificates, identity). */
  server: string;
  /** Proxy config stream URL. */
  stream: string;
  /** PEM trust bundle of both. */
  ca: string;
}

export interface SimProxySpec {
  /** Unique within the run: names the Workload and its (fake) inbound port. */
  index: number;
  service: string;
  /** The join token for `service`. */
  token: string;
  /** `--reach`: the services this proxy receives config for; absent = the whole mesh or on demand. */
  reach?: string[];
  /**
   * On-demand scoping (the default of `weft proxy`): the proxy starts with its own config and, once
   * that runs, its app calls these services (bare names): each is subscribed as the outbound
   * listener's first request for it would (the proxy's own Subscriptions), and waited for.
   */
  onDemand?: string[];
}

/** How long a simulated first call waits for its destination (the proxy's default is 3 s). */
const SIM_DISCOVERY_TIMEOUT_MS = 120_000;

/** The longest wait between two starts of a proxy whose start failed (a supervisor's restart backoff). */
export const MAX_RESTART_BACKOFF_MS = 10_000;

/** Inbound ports the simulated proxies claim in their hello (nothing listens on them). */
export const SIM_PORT_BASE = 20_000;

export class SimProxy {
  readonly spec: SimProxySpec;
  readonly snapshot = new SnapshotCell();
  startedAt = 0;
  certAt?: number;
  firstAckAt?: number;
  /** On demand: when every called destination was in its config (else the first ACK). */
  readyAt?: number;
  /** On demand: how long each first call waited for its destination (ms), and how many did not get it. */
  readonly discoveryMs: number[] = [];
  discoveryMissed = 0;
  /** Why the control plane ended the stream, by code (lease_lost, unresponsive, ...). */
  readonly errors = new Map<string, number>();
  /** Streams lost after they had connected. */
  disconnects = 0;
  /** Set when the proxy could not start and would not be restarted (identity or certificate refused). */
  failed?: string;
  /** Calls that failed before the certificate came (reset, timeout, 5xx) and were retried. */
  startRetries = 0;
  lastStartError?: string;
  /** What happened when, in ms from the start (for the slowest proxy's story in the log). */
  readonly trace: string[] = [];
  #stopped = false;
  #certs?: CertificateManager;
  #client?: ConfigClient;
  #subscriptions?: Subscriptions;

  constructor(spec: SimProxySpec) {
    this.spec = spec;
  }

  /** Resolves once the stream is opened (not once a snapshot arrived), or the start was refused. */
  async start(cp: ControlPlaneTarget): Promise<void> {
    this.startedAt = nowMs();
    const target: ApiTarget = { server: cp.server, ca: cp.ca, token: this.spec.token };
    for (let attempt = 0; ; attempt++) {
      try {
        // As startProxy does: a busy control plane (503 + Retry-After, a reset) is retried in the
        // proxy itself with full jitter; each such retry is counted with the restarts.
        const onStartRetry = (err: Error, delayMs: number) => {
          this.startRetries++;
          this.lastStartError = err.message;
          this.#note(`start call failed (${err.message.slice(0, 80)}), retry in ${Math.round(delayMs)} ms`);
        };
        const { identity } = await withRetry(
          () => callApi<{ identity: string }>(target, "GET", "/api/v1/identity"),
          { policy: CERT_BACKOFF, deadlineMs: DEFAULT_START_DEADLINE_MS, onRetry: onStartRetry },
        );
        this.#certs = new CertificateManager(target, identity, { onStartRetry });
        await this.#certs.start();
        break;
      } catch (err) {
        this.lastStartError = (err as Error).message;
        // Refused (a bad token): a real proxy exits for good. Otherwise (reset, timeout, 5xx) its
        // supervisor restarts it with backoff, which is what this loop stands for.
        const status = (err as ApiCallError).status;
        if (this.#stopped || (status >= 400 && status < 500)) {
          this.failed = this.lastStartError;
          return;
        }
        this.startRetries++;
        this.#note(`start failed (${this.lastStartError.slice(0, 80)}), restarting`);
        const base = Math.min(MAX_RESTART_BACKOFF_MS, 1000 * 2 ** attempt);
        await new Promise((r) => setTimeout(r, base / 2 + Math.random() * (base / 2)));
      }
    }
    this.certAt = nowMs();
    this.#note("certificate");
    const first = this.snapshot.subscribe(() => {
      first();
      this.firstAckAt = nowMs();
      this.#note("first snapshot ACKed");
      client.reportServing(true);
      this.#callDestinations();
    });
    const client = new ConfigClient({
      snapshot: this.snapshot,
      url: cp.stream,
      ca: cp.ca,
      tls: this.#certs.material,
      log: (m) => this.#log(m),
      hello: {
        workload: `${this.spec.service}-sim${this.spec.index}`,
        address: "127.0.0.1",
        port: SIM_PORT_BASE + this.spec.index,
        appPort: 8080,
        reach: this.spec.reach,
        onDemand: this.spec.onDemand ? true : undefined,
        serving: false,
      },
      subscriptions: this.spec.onDemand ? () => this.#subscriptions?.names() ?? [] : undefined,
    });
    if (this.spec.onDemand)
      this.#subscriptions = new Subscriptions({
        config: this.snapshot,
        send: client,
        // Always "used": the app keeps calling what it called (no expiry during a run).
        lookup: (name) =>
          this.snapshot.current()?.outbound[`${name}.${SIM_NAMESPACE}`] ? { used: true } : undefined,
        timeoutMs: SIM_DISCOVERY_TIMEOUT_MS,
      });
    this.#client = client;
    client.start();
  }

  /** On demand: the app's first call to each destination waits for it, as the outbound listener's would. */
  #callDestinations(): void {
    const names = this.spec.onDemand;
    const subs = this.#subscriptions;
    if (names === undefined || subs === undefined) {
      this.readyAt = this.firstAckAt;
      return;
    }
    let left = names.length;
    for (const name of names) {
      const asked = nowMs();
      subs.wait(name, (result) => {
        this.discoveryMs.push(nowMs() - asked);
        if (result !== "found") this.discoveryMissed++;
        if (--left === 0) {
          this.readyAt = nowMs();
          this.#note(`called destinations in (${names.length})`);
        }
      });
    }
  }

  /** Counts what the config client reports: refusals by code, and lost streams. */
  #log(m: string): void {
    this.#note(m.slice(0, 100));
    const refused = /^control plane refused the stream: ([a-z_]+):/.exec(m);
    if (refused) this.errors.set(refused[1], (this.errors.get(refused[1]) ?? 0) + 1);
    else if (m.startsWith("lost control plane")) this.disconnects++;
  }

  #note(what: string): void {
    if (this.trace.length < 40) this.trace.push(`${Math.round(nowMs() - this.startedAt)} ms ${what}`);
  }

  current(): ProxySnapshot | undefined {
    return this.snapshot.current();
  }

  /** Bytes of config messages (snapshots and deltas) the control plane sent it. */
  bytesReceived(): number {
    return this.#client?.bytesReceived ?? 0;
  }

  /** The encoded size of the snapshot it runs (the JSON the stream carried, without the envelope). */
  snapshotBytes(): number {
    const s = this.snapshot.current();
    return s ? Buffer.byteLength(JSON.stringify(s)) : 0;
  }

  /** Leaves as a proxy shut down does: bye, so its Workload goes now (the shrink step). */
  async leave(): Promise<void> {
    this.#stopped = true;
    this.#certs?.stop();
    this.#subscriptions?.stop();
    await this.#client?.stop(true);
  }

  /** Leaves without saying bye (as a killed proxy would): the run ends with the control plane. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#certs?.stop();
    this.#subscriptions?.stop();
    await this.#client?.stop(false);
  }
}
