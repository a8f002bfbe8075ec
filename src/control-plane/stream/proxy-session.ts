// One connected proxy: registers its Workload under a lease, compiles its snapshot whenever the mesh
// changes, and pushes it when it differs from what the proxy already runs — at the pace the proxy
// reads (snapshot-pusher.ts: a proxy that is behind gets only the newest). Health reports from the
// proxy's check of its app become the Workload's status, re-put under the same lease; so does whether
// the instance is serving: a proxy registers with `serving: false` until it and its app can take
// traffic, and says `serving: false` again before it drains.
//
// The lease is refreshed only while the proxy answers pings (liveness.ts), never merely because the
// stream is open, and only by a session that is still open: every path through registration checks
// for a close after each await, so a proxy that says hello and vanishes at any point leaves a lease
// that is revoked or runs out after the grace period — never a Workload registered forever.

import type { ServerHttp2Stream } from "node:http2";
import { isIP } from "node:net";
import { resourceKey, WEFT_API_VERSION, type Workload, type WorkloadStatus } from "../../model/resources.ts";
import {
  encodeMessage,
  LineDecoder,
  MAX_PROXY_MESSAGE_BYTES,
  MessageTooLargeError,
  type ControlPlaneMessage,
  type HealthMessage,
  type HelloMessage,
  type ProxyMessage,
  type ServingMessage,
} from "../../model/stream-protocol.ts";
import { logSafe } from "../../model/log-safe.ts";
import { systemClock } from "../../store/store.ts";
import { compileSnapshot } from "../compile/compile.ts";
import { checkHelloWorkload } from "./hello-workload.ts";
import { Liveness } from "./liveness.ts";
import type { StreamServerOptions } from "./server.ts";
import { SnapshotPusher } from "./snapshot-pusher.ts";

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
  #liveness?: Liveness;
  #pusher?: SnapshotPusher;
  #debounce?: NodeJS.Timeout;
  #helloDeadline?: NodeJS.Timeout;
  #unsubscribe?: () => void;
  /** Settles when the registration (hello → stored Workload) has run to its end, whatever the outcome. */
  registration: Promise<void> = Promise.resolve();
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
    const decoder = new LineDecoder(MAX_PROXY_MESSAGE_BYTES);
    const onData = (chunk: Buffer) => {
      try {
        decoder.push(chunk, (m) => this.#onMessage(m as ProxyMessage));
      } catch (err) {
        // Nothing more is read from a proxy that broke the protocol.
        stream.off("data", onData);
        stream.resume();
        const code = err instanceof MessageTooLargeError ? "message_too_large" : "bad_message";
        this.#fail(code, (err as Error).message);
      }
    };
    stream.on("data", onData);
    // A stream that never says hello holds a connection and a session for nothing: it gets one grace
    // period (what a registration would survive without its proxy), then it is ended.
    this.#helloDeadline = setTimeout(() => {
      if (!this.#hello)
        this.#fail("no_hello", `no hello within ${opts.graceSeconds} s of opening the stream`);
    }, opts.graceSeconds * 1000);
    this.#helloDeadline.unref();
  }

  get workload(): string | undefined {
    return this.#workload?.metadata.name;
  }

  #onMessage(msg: ProxyMessage): void {
    if (this.#failed) return;
    switch (msg?.type) {
      case "hello":
        if (this.#hello) return this.#fail("bad_message", "hello sent twice");
        this.registration = this.#register(msg).catch((err) =>
          this.#fail("register_failed", (err as Error).message),
        );
        return;
      case "ack":
        if (this.#pusher && msg.nonce === this.#pusher.nonce) this.ackedVersion = msg.version;
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
    if (this.#over) return;
    const { id: lease } = await store.leaseGrant(this.#opts.graceSeconds);
    // From here every exit before the Workload is stored revokes the lease; after, it runs out.
    const abandon = () => void store.leaseRevoke(lease).catch(() => {});
    if (this.#over) return abandon();
    this.#lease = lease;
    const key = resourceKey("Workload", this.peer.namespace, hello.workload);
    const existing = await store.get(key);
    if (this.#over) return abandon();
    if (existing) {
      const prev = JSON.parse(existing.value) as Workload;
      if (prev.spec.service !== this.peer.service) {
        abandon();
        return this.#fail("forbidden", `workload ${hello.workload} belongs to another service`);
      }
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
    // Closed while the put was on its way: nothing refreshes the lease, so the Workload goes when
    // the grace period ends (as for any stream that closes).
    if (this.#over) return;
    const graceMs = this.#opts.graceSeconds * 1000;
    this.#liveness = new Liveness({
      ping: (done) => this.#stream.session?.ping((err) => done(err)) ?? false,
      clock: this.#opts.clock ?? systemClock,
      periodMs: Math.max(200, graceMs / 3),
      timeoutMs: graceMs,
      onAlive: () => {
        if (this.#closed || this.#lease !== lease) return;
        store.leaseKeepAlive(lease).catch(() => this.#fail("lease_lost", "registration lease expired"));
      },
      onDead: (why) => this.#fail("unresponsive", `proxy stopped answering: ${why}`),
    });
    this.#pusher = new SnapshotPusher({
      stream: this.#stream,
      initialVersion: typeof hello.version === "string" ? hello.version : undefined,
      compile: () =>
        compileSnapshot(
          this.#opts.state.state(),
          {
            workload: this.#workload as Workload,
            appPort: hello.appPort,
            appPorts: hello.appPorts,
            reach: hello.reach,
          },
          this.#opts.state.prepared(),
        ),
    });
    this.#unsubscribe = this.#opts.state.onChange(() => this.#schedulePush());
    this.#pusher.push();
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
    if (this.#debounce || this.#closed) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      if (!this.#closed) this.#pusher?.push();
    }, this.#opts.debounceMs);
  }

  /** Snapshot pushes: written, and coalesced because the proxy had not read the previous one yet. */
  get pushes(): { sent: number; coalesced: number } {
    return { sent: this.#pusher?.sent ?? 0, coalesced: this.#pusher?.coalesced ?? 0 };
  }

  /** Bytes written to this proxy's stream that it has not read yet. */
  get bufferedBytes(): number {
    return this.#stream.writableLength;
  }

  #send(msg: ControlPlaneMessage): void {
    if (!this.#closed && this.#stream.writable) this.#stream.write(encodeMessage(msg));
  }

  #failed = false;

  /** Closed, or ended by us: no registration work may start any more. */
  get #over(): boolean {
    return this.#closed || this.#failed;
  }

  #fail(code: string, message: string): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#stopWork();
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
    this.#stopWork();
  }

  #stopWork(): void {
    clearTimeout(this.#helloDeadline);
    this.#liveness?.stop();
    this.#pusher?.stop();
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
  if (h.appPorts !== undefined) {
    if (typeof h.appPorts !== "object" || h.appPorts === null || Array.isArray(h.appPorts))
      return "hello.appPorts must map service ports (number or name) to app ports";
    const entries = Object.entries(h.appPorts);
    if (entries.length > MAX_APP_PORTS) return `hello.appPorts may name at most ${MAX_APP_PORTS} ports`;
    for (const [k, v] of entries) {
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(k))
        return `hello.appPorts: ${JSON.stringify(k.slice(0, 70))} is not a port number or name`;
      if (!Number.isInteger(v) || v < 1 || v > 65535) return `hello.appPorts.${k} must be a port number`;
    }
  }
  return checkHelloFields(h, peer);
}

/** Bounds and shapes of the hello fields beyond the basics above: the Workload's, as `weft apply` has them. */
function checkHelloFields(h: HelloMessage, peer: Peer): string | undefined {
  if (h.reach !== undefined) {
    if (h.reach.length > MAX_REACH) return `hello.reach may name at most ${MAX_REACH} services`;
    const bad = h.reach.findIndex((r) => !SERVICE_REF.test(r));
    if (bad >= 0) return `hello.reach[${bad}] must be a service name ("name" or "name.namespace")`;
  }
  if (h.version !== undefined && (typeof h.version !== "string" || h.version.length > 64))
    return "hello.version must be a snapshot version string";
  return checkHelloWorkload(h, peer);
}

const MAX_REACH = 1000;
const MAX_APP_PORTS = 100;
const SERVICE_REF = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$/;
