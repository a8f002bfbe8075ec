// The proxy config stream server (HTTP/2 over mutual TLS, port 15010). It only speaks the protocol:
// authenticate, hand each stream to a ProxySession (which registers the proxy and follows its
// snapshots in the cache), count what is connected.
//
// A new stream is admitted (api/admission.ts) before its session starts: a registration and a first
// snapshot are the expensive part of a proxy's life, and after a control-plane restart every proxy
// wants them at once. At most `concurrency` streams are between "opened" and "first snapshot written"
// (or `maxHoldMs`), served round-robin per identity; the others wait unanswered — with no lease yet,
// so nothing of theirs can expire — and past the queue's bounds or its wait limit a stream is answered
// 503 with Retry-After, which the proxy turns into a jittered wait (config-client.ts).

import {
  createSecureServer,
  constants,
  type Http2SecureServer,
  type Http2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { TLSSocket } from "node:tls";
import { STREAM_PATH } from "../../model/stream-protocol.ts";
import { parseSpiffeId, peerSpiffeId } from "../../pki/spiffe.ts";
import { systemClock, type Clock, type Store } from "../../store/store.ts";
import { Admission, Overloaded } from "../api/admission.ts";
import type { PushStats } from "../metrics.ts";
import { ProxySession } from "./proxy-session.ts";
import type { SnapshotCache } from "./snapshot-cache.ts";

export interface StreamServerOptions {
  store: Store;
  /** Where each proxy's snapshot comes from (compiled there, only read here). */
  cache: SnapshotCache;
  tls: { keyPem: string; certPem: string; trustBundlePem: string };
  /** How long a registered workload outlives its stream (seconds). */
  graceSeconds: number;
  /** Time for the liveness pings (default: the system clock); tests share the store's manual clock. */
  clock?: Clock;
  /** The control plane's loop stalls, not held against proxies' ping answers (loop-lag.ts). */
  lag?: { stalledMs(): number };
  /** Admission of new streams (defaults: DEFAULT_STREAM_ADMISSION). */
  admission?: Partial<StreamAdmissionLimits>;
  /** Where pushes are counted (metrics.ts). */
  pushStats?: PushStats;
}

export interface StreamAdmissionLimits {
  /** Streams between "opened" and "first snapshot written" at once. */
  concurrency: number;
  /** Streams waiting for their turn, in all and per identity. */
  maxQueued: number;
  maxQueuedPerIdentity: number;
  /** Longest wait for a turn before 503 + Retry-After (ms). */
  maxWaitMs: number;
  /** A turn ends at the first snapshot written, or after this long (ms). */
  maxHoldMs: number;
}

export const DEFAULT_STREAM_ADMISSION: StreamAdmissionLimits = {
  concurrency: 64,
  maxQueued: 4000,
  maxQueuedPerIdentity: 500,
  // A queued stream costs the control plane little (an idle h2 stream, no lease yet) and its proxy has
  // no deadline on the answer; a refusal costs a new TLS handshake later. So streams wait long.
  maxWaitMs: 60_000,
  maxHoldMs: 5_000,
};

export interface StreamServer {
  server: Http2SecureServer;
  sessions(): ProxySession[];
  /** Admission of new streams (counters for tests and diagnostics). */
  admission: Admission;
  close(): Promise<void>;
}

export function createStreamServer(opts: StreamServerOptions): StreamServer {
  const sessions = new Set<ProxySession>();
  const server = createSecureServer({
    key: opts.tls.keyPem,
    cert: opts.tls.certPem,
    ca: opts.tls.trustBundlePem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.2",
  });
  const h2sessions = new Set<Http2Session>();
  let closing = false;
  const clock = opts.clock ?? systemClock;
  const limits = { ...DEFAULT_STREAM_ADMISSION, ...opts.admission };
  const admission = new Admission({
    name: "proxy registration",
    concurrency: limits.concurrency,
    maxQueued: limits.maxQueued,
    maxQueuedPerKey: limits.maxQueuedPerIdentity,
    maxWaitMs: limits.maxWaitMs,
    clock,
  });
  server.on("sessionError", () => {});
  server.on("session", (s: Http2Session) => {
    h2sessions.add(s);
    s.on("close", () => h2sessions.delete(s));
  });
  server.on("stream", (stream: ServerHttp2Stream, headers) => {
    stream.on("error", () => {});
    if (closing) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (headers[":path"] !== STREAM_PATH || headers[":method"] !== "POST") {
      stream.respond({ ":status": 404 });
      stream.end();
      return;
    }
    const socket = stream.session?.socket as TLSSocket | undefined;
    const id = peerSpiffeId(socket?.getPeerCertificate());
    const parts = id ? parseSpiffeId(id) : undefined;
    if (!parts || !id) {
      stream.respond({ ":status": 403 });
      stream.end(
        JSON.stringify({ type: "error", code: "forbidden", message: "a mesh certificate is required" }) +
          "\n",
      );
      return;
    }
    const peer = { id, namespace: parts.namespace, service: parts.serviceAccount };
    const gone = new AbortController();
    stream.once("close", () => gone.abort(new Error("stream closed")));
    admission
      .run(`${peer.namespace}/${peer.service}`, () => open(stream, peer), gone.signal)
      .catch((err: unknown) => {
        if (!(err instanceof Overloaded) || stream.destroyed || stream.headersSent) return;
        const retryAfter = String(Math.max(1, Math.ceil(err.retryAfterMs / 1000)));
        stream.respond({ ":status": 503, "content-type": "application/x-ndjson", "retry-after": retryAfter });
        stream.end(JSON.stringify({ type: "error", code: "overloaded", message: err.message }) + "\n");
      });
  });

  /** Starts a proxy's session; resolves when its admission turn is over (first snapshot, end, or cap). */
  function open(stream: ServerHttp2Stream, peer: { id: string; namespace: string; service: string }) {
    if (stream.destroyed || closing) return Promise.resolve();
    stream.respond({ ":status": 200, "content-type": "application/x-ndjson" });
    const session = new ProxySession(stream, peer, opts);
    sessions.add(session);
    stream.on("close", () => {
      sessions.delete(session);
      session.closed();
    });
    return new Promise<void>((resolve) => {
      const cap = clock.setTimeout(resolve, limits.maxHoldMs);
      (cap as { unref?: () => void } | undefined)?.unref?.();
      void session.started.then(() => {
        clock.clearTimeout(cap);
        resolve();
      });
    });
  }

  return {
    server,
    sessions: () => [...sessions],
    admission,
    // Stopping must not wait on the proxies: their streams are cancelled (they will reconnect to
    // whichever control plane comes next), their connections told to go away, and destroyed if
    // they linger.
    async close() {
      closing = true;
      for (const s of sessions) s.abort(constants.NGHTTP2_CANCEL);
      for (const s of h2sessions) s.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const deadline = Date.now() + 1000;
      while (h2sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const s of h2sessions) s.destroy();
      await closed;
    },
  };
}
