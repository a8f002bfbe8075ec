// One proxy's config stream, protocol only: read and check its messages, hand its hello to the
// registration (registration.ts), then follow its snapshots in the cache (snapshot-cache.ts) and
// push each new version at the pace the proxy reads (snapshot-pusher.ts); match ACKs and NACKs to
// the nonce last sent, and ping to know the proxy is alive (liveness.ts) — each answered ping
// refreshes the registration's lease, never merely an open stream. It compiles nothing: the cache
// is the only compiler, and this session one of its readers.
//
// A stream that never says hello is ended after the grace period; one that breaks the protocol gets
// an error message naming what was wrong, and is ended. An on-demand proxy's subscribe and
// unsubscribe messages change what its snapshot holds (snapshot-cache.ts setSubscriptions).

import type { ServerHttp2Stream } from "node:http2";
import {
  encodeMessage,
  LineDecoder,
  MAX_PROXY_MESSAGE_BYTES,
  MessageTooLargeError,
  type ControlPlaneMessage,
  type HelloMessage,
  type ProxyMessage,
  type SubscribeMessage,
  type UnsubscribeMessage,
} from "../../model/stream-protocol.ts";
import { logSafe } from "../../model/log-safe.ts";
import { systemClock } from "../../store/store.ts";
import { checkHealth, checkServing, checkSubscription, MAX_SUBSCRIPTIONS } from "./hello-check.ts";
import { Liveness } from "./liveness.ts";
import { Registration, type Peer } from "./registration.ts";
import type { StreamServerOptions } from "./server.ts";
import { proxyKey } from "./snapshot-cache.ts";
import { SnapshotPusher } from "./snapshot-pusher.ts";

export type { Peer } from "./registration.ts";

export class ProxySession {
  readonly peer: Peer;
  readonly #stream: ServerHttp2Stream;
  readonly #opts: StreamServerOptions;
  readonly #registration: Registration;
  #hello?: HelloMessage;
  /** On-demand subscriptions (host names) the proxy holds: from its hello, then subscribe/unsubscribe. */
  readonly #subscriptions = new Set<string>();
  #liveness?: Liveness;
  #pusher?: SnapshotPusher;
  #helloDeadline?: NodeJS.Timeout;
  #stopFollowing?: () => void;
  /** The proxy's key in the snapshot cache, once registered. */
  #key?: string;
  /** Settles when the registration (hello → stored Workload) has run to its end, whatever the outcome. */
  registration: Promise<void> = Promise.resolve();
  /** The version the proxy last ACKed: the one sent with the ACKed nonce (not what the proxy claims). */
  ackedVersion?: string;
  /** The proxy's last NACK: the version sent with that nonce, and its error (as the proxy wrote it). */
  lastNack?: string;
  lastNackVersion?: string;
  #closed = false;
  #failed = false;
  #markStarted!: () => void;
  /** Settles once the first snapshot was written to the proxy, or the stream is over (admission's hold). */
  readonly started = new Promise<void>((resolve) => (this.#markStarted = resolve));

  constructor(stream: ServerHttp2Stream, peer: Peer, opts: StreamServerOptions) {
    this.peer = peer;
    this.#stream = stream;
    this.#opts = opts;
    this.#registration = new Registration({
      peer,
      store: opts.store,
      graceSeconds: opts.graceSeconds,
      isOver: () => this.#over,
      fail: (code, message) => this.#fail(code, message),
    });
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
    return this.#registration.workload?.metadata.name;
  }

  #onMessage(msg: ProxyMessage): void {
    if (this.#failed) return;
    this.#liveness?.heard(); // any message proves the proxy alive, as an answered ping does
    switch (msg?.type) {
      case "hello":
        if (this.#hello) return this.#fail("bad_message", "hello sent twice");
        this.#hello = msg;
        // Checked with the rest of the hello by the registration; held only if it passes there.
        if (msg.onDemand === true && Array.isArray(msg.subscriptions))
          for (const n of msg.subscriptions) if (typeof n === "string") this.#subscriptions.add(n);
        this.registration = this.#register(msg).catch((err) =>
          this.#fail("register_failed", (err as Error).message),
        );
        return;
      case "ack":
        if (this.#pusher && msg.nonce === this.#pusher.nonce) {
          this.ackedVersion = this.#pusher.version;
          this.#pusher.acked(msg.nonce);
        }
        return;
      case "nack": {
        const current = this.#pusher && msg.nonce === this.#pusher.nonce;
        if (typeof msg.nonce === "number") this.#pusher?.nacked(msg.nonce);
        this.lastNack = typeof msg.error === "string" ? msg.error.slice(0, 4096) : "(no reason given)";
        this.lastNackVersion = current ? this.#pusher?.version : undefined;
        console.error(
          `weft control-plane: ${this.workload} rejected config ${logSafe(msg.version, 80)}: ${logSafe(this.lastNack)}`,
        );
        return;
      }
      case "health": {
        if (!this.#hello) return this.#fail("bad_message", "health before hello");
        const problem = checkHealth(msg);
        if (problem) return this.#fail("bad_message", problem);
        this.#registration.recordHealth(msg);
        return;
      }
      case "serving": {
        if (!this.#hello) return this.#fail("bad_message", "serving before hello");
        const problem = checkServing(msg);
        if (problem) return this.#fail("bad_message", problem);
        this.#registration.recordServing(msg.serving);
        return;
      }
      case "subscribe":
      case "unsubscribe":
        return this.#onSubscription(msg);
      case "bye":
        this.closed();
        this.#registration
          .deregister()
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

  /**
   * On-demand scoping: the proxy's subscriptions change, and its snapshot is compiled again at once.
   * Only an on-demand proxy, after its hello, with valid names; past the bound of names held, the
   * stream is ended (a proxy bounds its own set below it).
   */
  #onSubscription(msg: SubscribeMessage | UnsubscribeMessage): void {
    if (!this.#hello) return this.#fail("bad_message", `${msg.type} before hello`);
    if (this.#hello.onDemand !== true)
      return this.#fail("bad_message", `${msg.type} from a proxy whose hello did not ask for onDemand`);
    const problem = checkSubscription(msg);
    if (problem) return this.#fail("bad_message", problem);
    const set = this.#subscriptions;
    const before = set.size;
    if (msg.type === "subscribe") {
      const fresh = msg.names.filter((n) => !set.has(n));
      if (set.size + new Set(fresh).size > MAX_SUBSCRIPTIONS)
        return this.#fail(
          "too_many_subscriptions",
          `a proxy may hold at most ${MAX_SUBSCRIPTIONS} subscriptions; unsubscribe some first`,
        );
      for (const n of fresh) set.add(n);
      // Nothing new: the snapshot already answers these names; nothing to compile.
      if (set.size === before) return;
    } else {
      for (const n of msg.names) set.delete(n);
      if (set.size === before) return;
    }
    if (this.#key !== undefined) this.#opts.cache.setSubscriptions(this.#key, [...set]);
  }

  async #register(hello: HelloMessage): Promise<void> {
    const result = await this.#registration.register(hello);
    if (result === undefined || this.#over) return;
    if ("code" in result) return this.#fail(result.code, result.message);
    const graceMs = this.#opts.graceSeconds * 1000;
    this.#liveness = new Liveness({
      ping: (done) => this.#stream.session?.ping((err) => done(err)) ?? false,
      clock: this.#opts.clock ?? systemClock,
      periodMs: Math.max(200, graceMs / 3),
      timeoutMs: graceMs,
      onAlive: () => this.#registration.refresh(),
      onDead: (why) => this.#fail("unresponsive", `proxy stopped answering: ${why}`),
      lag: this.#opts.lag,
    });
    const key = proxyKey(this.peer.namespace, result.metadata.name);
    const { cache } = this.#opts;
    this.#key = key;
    const release = cache.setNode(key, {
      workload: result,
      appPort: hello.appPort,
      appPorts: hello.appPorts,
      reach: hello.reach,
      ...(hello.onDemand === true ? { onDemand: true, subscriptions: [...this.#subscriptions] } : {}),
    });
    const resumeFrom = typeof hello.version === "string" ? hello.version : undefined;
    const pusher = new SnapshotPusher({
      stream: this.#stream,
      next: (version, onSnapshot) =>
        cache.watch(key, version, (s) => {
          onSnapshot(s);
          this.#markStarted();
        }),
      deltas: cache.deltas,
      acceptsDeltas: hello.deltas === true,
      initialVersion: resumeFrom,
      // Checked with the hello (hello-check.ts): a delta against what the proxy says it runs.
      initialHeld:
        resumeFrom !== undefined && hello.resources !== undefined
          ? cache.deltas.fromHello(resumeFrom, hello.resources)
          : undefined,
      stats: this.#opts.pushStats,
    });
    this.#pusher = pusher;
    this.#stopFollowing = release;
    pusher.start();
    // Resumed with the newest version: it holds the cache's snapshot, whose pieces other proxies share.
    const current = cache.get(key);
    if (current !== undefined) pusher.resumed(current);
    // Its snapshot is compiled (and sent, unless the proxy resumed with that very version): the
    // expensive part of joining is done, and its admission turn can go to the next proxy.
    if (cache.get(key) !== undefined) this.#markStarted();
  }

  /**
   * Pushes: messages written (and how many were deltas, and their bytes), and mesh changes coalesced
   * because the proxy had not read the last one yet.
   */
  get pushes(): { sent: number; deltas: number; bytes: number; coalesced: number } {
    const coalesced = this.#key === undefined ? 0 : this.#opts.cache.deferred(this.#key);
    const p = this.#pusher;
    return { sent: p?.sent ?? 0, deltas: p?.deltas ?? 0, bytes: p?.bytes ?? 0, coalesced };
  }

  /** Bytes written to this proxy's stream that it has not read yet. */
  get bufferedBytes(): number {
    return this.#stream.writableLength;
  }

  #send(msg: ControlPlaneMessage): void {
    if (!this.#closed && this.#stream.writable) this.#stream.write(encodeMessage(msg));
  }

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

  abort(code: number): void {
    this.#stream.close(code);
  }

  /** The stream is gone: stop refreshing the lease, so the workload disappears after the grace period. */
  closed(): void {
    this.#closed = true;
    this.#registration.closed();
    this.#stopWork();
  }

  #stopWork(): void {
    this.#markStarted();
    clearTimeout(this.#helloDeadline);
    this.#liveness?.stop();
    this.#pusher?.stop();
    this.#stopFollowing?.();
    this.#stopFollowing = undefined;
  }
}
