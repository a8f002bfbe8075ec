// One proxy's registration: its Workload, stored under a lease that lives as long as the proxy answers,
// with the proxy's health and serving reports as the Workload's status (re-put under the same lease).
// A proxy registers with `serving: false` until it and its app can take traffic, and says
// `serving: false` again before it drains.
//
// The stream's protocol server (proxy-session.ts) owns the when: it hands the hello over, refreshes
// the lease on each answered ping, and says when the stream closed. This file owns the what, and
// the guarantee that matters: every step of the registration checks for a close after each await,
// so a proxy that says hello and vanishes at any point leaves a lease that is revoked or runs out
// after the grace period — never a Workload registered forever (registration-race.test.ts).

import { resourceKey, WEFT_API_VERSION, type Workload, type WorkloadStatus } from "../../model/resources.ts";
import type { HealthMessage, HelloMessage } from "../../model/stream-protocol.ts";
import type { Store } from "../../store/store.ts";
import { checkHello } from "./hello-check.ts";

export interface Peer {
  id: string;
  namespace: string;
  service: string;
}

export interface RegistrationOptions {
  peer: Peer;
  store: Store;
  /** How long a registered workload outlives its stream (seconds): the lease's TTL. */
  graceSeconds: number;
  /** Whether the stream is over (closed, or ended by the control plane): no registration step may start. */
  isOver: () => boolean;
  /** A failure that ends the stream (status writes, lease loss): code and message for the proxy. */
  fail: (code: string, message: string) => void;
}

/** Why a hello was refused, for the error message that ends the stream. */
export interface Refusal {
  code: "bad_hello" | "forbidden";
  message: string;
}

export class Registration {
  readonly #opts: RegistrationOptions;
  #workload?: Workload;
  #lease = 0;
  #closed = false;
  /** Health reported before the registration was stored: written with it. */
  #pendingStatus?: WorkloadStatus;
  /** Status writes, one after another, so the store ends with the latest report. */
  #writes: Promise<void> = Promise.resolve();

  constructor(opts: RegistrationOptions) {
    this.#opts = opts;
  }

  /** The stored Workload (undefined until registered). */
  get workload(): Workload | undefined {
    return this.#workload;
  }

  /**
   * Checks the hello and stores its Workload under a new lease. Resolves with the Workload once it is
   * stored; with a refusal; or with undefined when the stream ended on the way (whatever was granted
   * is revoked, or runs out after the grace period).
   */
  async register(hello: HelloMessage): Promise<Workload | Refusal | undefined> {
    const { peer, store } = this.#opts;
    const problem = checkHello(hello, peer);
    if (problem) return { code: "bad_hello", message: problem };
    // Not serving yet (the proxy waits for its config and its app): registered, but no endpoint.
    // Reports that arrive while the registration is being stored update this pending status.
    if (hello.serving === false) this.#pendingStatus = { ...this.#pendingStatus, serving: false };
    if (this.#opts.isOver()) return undefined;
    const { id: lease } = await store.leaseGrant(this.#opts.graceSeconds);
    // From here every exit before the Workload is stored revokes the lease; after, it runs out.
    const abandon = () => void store.leaseRevoke(lease).catch(() => {});
    if (this.#opts.isOver()) return abandon();
    this.#lease = lease;
    const key = resourceKey("Workload", peer.namespace, hello.workload);
    const existing = await store.get(key);
    if (this.#opts.isOver()) return abandon();
    if (existing && (JSON.parse(existing.value) as Workload).spec.service !== peer.service) {
      abandon();
      return { code: "forbidden", message: `workload ${hello.workload} belongs to another service` };
    }
    const workload: Workload = {
      apiVersion: WEFT_API_VERSION,
      kind: "Workload",
      metadata: {
        name: hello.workload,
        namespace: peer.namespace,
        labels: hello.labels ?? {},
        creationTimestamp: new Date().toISOString(),
      },
      spec: {
        service: peer.service,
        address: hello.address,
        port: hello.port,
        identity: peer.id,
        ...(hello.zone ? { zone: hello.zone } : {}),
      },
    };
    if (this.#pendingStatus && Object.keys(this.#pendingStatus).length > 0)
      workload.status = { ...this.#pendingStatus };
    this.#pendingStatus = undefined;
    this.#workload = workload;
    // Health reports that arrive from here on queue behind the registration itself.
    const registered = store.put(key, JSON.stringify(workload), { lease });
    this.#writes = registered.then(
      () => {},
      () => {},
    );
    await registered;
    // Closed while the put was on its way: nothing refreshes the lease, so the Workload goes when
    // the grace period ends (as for any stream that closes).
    if (this.#opts.isOver()) return undefined;
    // The lease was granted when registering began; on a busy store the writes may have taken a good
    // part of its TTL. Its time starts now, when the Workload is there and liveness takes over.
    this.refresh();
    return workload;
  }

  /** The proxy answered a ping: keep the lease (only while the stream is open and registered). */
  refresh(): void {
    const lease = this.#lease;
    if (this.#closed || !lease || !this.#workload) return;
    this.#opts.store.leaseKeepAlive(lease).catch(() => {
      if (!this.#closed && this.#lease === lease) this.#opts.fail("lease_lost", "registration lease expired");
    });
  }

  /**
   * Records the app's health as the Workload's status. `since` is when the control plane learnt of
   * the state, kept when a report repeats the current one (a proxy re-sends its state on reconnect).
   */
  recordHealth(msg: HealthMessage): void {
    const health = msg.healthy ? "Healthy" : "Unhealthy";
    const current = this.#currentStatus();
    this.#setStatus({
      ...(current?.serving === false ? { serving: false } : {}),
      health,
      ...(msg.detail ? { detail: msg.detail } : {}),
      since: current?.health === health && current.since ? current.since : new Date().toISOString(),
    });
  }

  /** Serving is the default: only `false` is recorded. */
  recordServing(serving: boolean): void {
    const { serving: _, ...rest } = this.#currentStatus() ?? {};
    this.#setStatus(serving ? rest : { ...rest, serving: false });
  }

  /** The proxy said bye: the Workload goes now, not after the grace period. */
  async deregister(): Promise<void> {
    const lease = this.#lease;
    this.#lease = 0;
    this.closed();
    if (lease) await this.#opts.store.leaseRevoke(lease);
  }

  /** The stream is gone: stop refreshing the lease, so the workload disappears after the grace period. */
  closed(): void {
    this.#closed = true;
  }

  #currentStatus(): WorkloadStatus | undefined {
    return (this.#workload ? this.#workload.status : this.#pendingStatus) as WorkloadStatus | undefined;
  }

  #setStatus(status: WorkloadStatus): void {
    // Hello is still being stored: the registration will carry this status.
    if (!this.#workload) {
      this.#pendingStatus = status;
      return;
    }
    const { status: _, ...bare } = this.#workload;
    this.#workload = Object.keys(status).length > 0 ? { ...bare, status: { ...status } } : bare;
    const workload = this.#workload;
    this.#writes = this.#writes.then(async () => {
      // After bye or expiry the key is gone (or someone else's): never resurrect it without a lease.
      if (this.#closed || !this.#lease || workload !== this.#workload) return;
      const key = resourceKey("Workload", this.#opts.peer.namespace, workload.metadata.name);
      await this.#opts.store.put(key, JSON.stringify(workload), { lease: this.#lease });
    });
    this.#writes.catch((err) =>
      this.#opts.fail("status_failed", `recording status: ${(err as Error).message}`),
    );
    this.#writes = this.#writes.catch(() => {});
  }
}
