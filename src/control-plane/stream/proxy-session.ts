// One connected proxy: registers its Workload under a lease that lives as long as the stream (plus a
// grace period), compiles its snapshot whenever the mesh changes, and pushes it when it differs from
// what the proxy already runs. Health reports from the proxy's check of its app become the
// Workload's status, re-put under the same lease (so the registration still ends with the stream);
// so does whether the instance is serving: a proxy registers with `serving: false` until it and its
// app can take traffic, and says `serving: false` again before it drains.

import type { ServerHttp2Stream } from "node:http2";
import { isIP } from "node:net";
import { resourceKey, WEFT_API_VERSION, type Workload, type WorkloadStatus } from "../../model/resources.ts";
import {
  encodeMessage,
  LineDecoder,
  type ControlPlaneMessage,
  type HealthMessage,
  type HelloMessage,
  type ProxyMessage,
  type ServingMessage,
} from "../../model/stream-protocol.ts";
import { logSafe } from "../../model/log-safe.ts";
import { compileSnapshot } from "../compile/compile.ts";
import type { StreamServerOptions } from "./server.ts";

export interface Peer {
  id: string;
  namespace: string;
  service: string;
}

export class ProxySession {
  readonly peer: Peer;
  readonly #stream: ServerHttp2Stream;
  readonly #opts: StreamServerOptions;
  #hello?: HelloMessage;
  #workload?: Workload;
  #lease = 0;
  #keepAlive?: NodeJS.Timeout;
  #debounce?: NodeJS.Timeout;
  #unsubscribe?: () => void;
  #nonce = 0;
  #sentVersion?: string;
  ackedVersion?: string;
  lastNack?: string;
  #closed = false;
  /** Health reported before the registration was stored: written with it. */
  #pendingStatus?: WorkloadStatus;
  /** Status writes, one after another, so the store ends with the latest report. */
  #writes: Promise<void> = Promise.resolve();

  constructor(stream: ServerHttp2Stream, peer: Peer, opts: StreamServerOptions) {
    this.peer = peer;
    this.#stream = stream;
    this.#opts = opts;
    const decoder = new LineDecoder();
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      try {
        decoder.push(chunk, (m) => this.#onMessage(m as ProxyMessage));
      } catch (err) {
        this.#fail("bad_message", (err as Error).message);
      }
    });
  }

  get workload(): string | undefined {
    return this.#workload?.metadata.name;
  }

  #onMessage(msg: ProxyMessage): void {
    switch (msg?.type) {
      case "hello":
        if (this.#hello) return this.#fail("bad_message", "hello sent twice");
        this.#register(msg).catch((err) => this.#fail("register_failed", (err as Error).message));
        return;
      case "ack":
        if (msg.nonce === this.#nonce) this.ackedVersion = msg.version;
        return;
      case "nack":
        this.lastNack = msg.error;
        console.error(
          `weft control-plane: ${this.workload} rejected config ${logSafe(msg.version, 80)}: ${logSafe(msg.error)}`,
        );
        return;
      case "health": {
        if (!this.#hello) return this.#fail("bad_message", "health before hello");
        const problem = checkHealth(msg);
        if (problem) return this.#fail("bad_message", problem);
        this.#recordHealth(msg);
        return;
      }
      case "serving": {
        if (!this.#hello) return this.#fail("bad_message", "serving before hello");
        const problem = checkServing(msg);
        if (problem) return this.#fail("bad_message", problem);
        this.#recordServing(msg.serving);
        return;
      }
      case "bye":
        this.#deregister()
          .catch(() => {})
          .finally(() => this.#stream.end());
        return;
      default:
        this.#fail(
          "bad_message",
          `unknown message type ${JSON.stringify((msg as { type?: unknown })?.type)}`,
        );
    }
  }

  async #register(hello: HelloMessage): Promise<void> {
    const problem = checkHello(hello, this.peer);
    if (problem) return this.#fail("bad_hello", problem);
    this.#hello = hello;
    // Not serving yet (the proxy waits for its config and its app): registered, but no endpoint.
    // Reports that arrive while the registration is being stored update this pending status.
    if (hello.serving === false) this.#pendingStatus = { serving: false };
    const store = this.#opts.store;
    const { id: lease } = await store.leaseGrant(this.#opts.graceSeconds);
    if (this.#closed) return void store.leaseRevoke(lease).catch(() => {});
    this.#lease = lease;
    const key = resourceKey("Workload", this.peer.namespace, hello.workload);
    const existing = await store.get(key);
    if (existing) {
      const prev = JSON.parse(existing.value) as Workload;
      if (prev.spec.service !== this.peer.service)
        return this.#fail("forbidden", `workload ${hello.workload} belongs to another service`);
    }
    this.#workload = {
      apiVersion: WEFT_API_VERSION,
      kind: "Workload",
      metadata: {
        name: hello.workload,
        namespace: this.peer.namespace,
        labels: hello.labels ?? {},
        creationTimestamp: new Date().toISOString(),
      },
      spec: {
        service: this.peer.service,
        address: hello.address,
        port: hello.port,
        identity: this.peer.id,
        ...(hello.zone ? { zone: hello.zone } : {}),
      },
    };
    if (this.#pendingStatus && Object.keys(this.#pendingStatus).length > 0)
      this.#workload.status = { ...this.#pendingStatus };
    this.#pendingStatus = undefined;
    // Health reports that arrive from here on queue behind the registration itself.
    const registered = store.put(key, JSON.stringify(this.#workload), { lease });
    this.#writes = registered.then(
      () => {},
      () => {},
    );
    await registered;
    const period = Math.max(200, (this.#opts.graceSeconds * 1000) / 3);
    this.#keepAlive = setInterval(() => {
      store.leaseKeepAlive(lease).catch(() => this.#fail("lease_lost", "registration lease expired"));
    }, period);
    this.#unsubscribe = this.#opts.state.onChange(() => this.#schedulePush());
    this.#push();
  }

  /**
   * Records the app's health as the Workload's status. `since` is when the control plane learnt of
   * the state, kept when a report repeats the current one (a proxy re-sends its state on reconnect).
   */
  #recordHealth(msg: HealthMessage): void {
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
  #recordServing(serving: boolean): void {
    const { serving: _, ...rest } = this.#currentStatus() ?? {};
    this.#setStatus(serving ? rest : { ...rest, serving: false });
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
      const key = resourceKey("Workload", this.peer.namespace, workload.metadata.name);
      await this.#opts.store.put(key, JSON.stringify(workload), { lease: this.#lease });
    });
    this.#writes.catch((err) => this.#fail("status_failed", `recording status: ${(err as Error).message}`));
    this.#writes = this.#writes.catch(() => {});
  }

  #schedulePush(): void {
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#push();
    }, this.#opts.debounceMs);
  }

  #push(): void {
    if (this.#closed || !this.#workload || !this.#hello) return;
    const snapshot = compileSnapshot(this.#opts.state.state(), {
      workload: this.#workload,
      appPort: this.#hello.appPort,
      reach: this.#hello.reach,
    });
    const runs = this.#sentVersion ?? this.#hello.version;
    if (snapshot.version === runs) return;
    this.#sentVersion = snapshot.version;
    this.#send({ type: "snapshot", nonce: ++this.#nonce, version: snapshot.version, snapshot });
  }

  #send(msg: ControlPlaneMessage): void {
    if (!this.#closed && this.#stream.writable) this.#stream.write(encodeMessage(msg));
  }

  #fail(code: string, message: string): void {
    this.#send({ type: "error", code, message });
    this.#stream.end();
    // A well-behaved proxy ends its side on our end-of-stream; do not wait forever for one that doesn't.
    setTimeout(() => this.#stream.close(), 1000).unref();
  }

  async #deregister(): Promise<void> {
    const lease = this.#lease;
    this.#lease = 0;
    this.closed();
    if (lease) await this.#opts.store.leaseRevoke(lease);
  }

  abort(code: number): void {
    this.#stream.close(code);
  }

  /** The stream is gone: stop refreshing the lease, so the workload disappears after the grace period. */
  closed(): void {
    this.#closed = true;
    clearInterval(this.#keepAlive);
    clearTimeout(this.#debounce);
    this.#unsubscribe?.();
  }
}

function checkServing(m: ServingMessage): string | undefined {
  return typeof m.serving === "boolean" ? undefined : "serving.serving must be true or false";
}

function checkHealth(h: HealthMessage): string | undefined {
  if (typeof h.healthy !== "boolean") return "health.healthy must be true or false";
  if (h.detail !== undefined && (typeof h.detail !== "string" || h.detail.length > MAX_HEALTH_DETAIL))
    return `health.detail must be a string of at most ${MAX_HEALTH_DETAIL} characters`;
  return undefined;
}

const MAX_HEALTH_DETAIL = 1024;

function checkHello(h: HelloMessage, peer: Peer): string | undefined {
  if (typeof h.workload !== "string" || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(h.workload))
    return "hello.workload must be a DNS label";
  if (!h.workload.startsWith(`${peer.service}-`)) return `hello.workload must start with "${peer.service}-"`;
  if (typeof h.address !== "string" || !isIP(h.address)) return "hello.address must be an IP address";
  for (const f of ["port", "appPort"] as const) {
    const v = h[f];
    if (!Number.isInteger(v) || v < 1 || v > 65535) return `hello.${f} must be a port number`;
  }
  if (h.reach !== undefined && (!Array.isArray(h.reach) || h.reach.some((r) => typeof r !== "string")))
    return "hello.reach must be a list of service names";
  if (h.serving !== undefined && typeof h.serving !== "boolean") return "hello.serving must be true or false";
  return undefined;
}
