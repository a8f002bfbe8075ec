// The proxy config stream server (HTTP/2 over mutual TLS, port 15010). It only speaks the protocol:
// authenticate, hand each stream to a ProxySession (which registers the proxy and follows its
// snapshots in the cache), count what is connected.

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
import type { Clock, Store } from "../../store/store.ts";
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
}

export interface StreamServer {
  server: Http2SecureServer;
  sessions(): ProxySession[];
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
    stream.respond({ ":status": 200, "content-type": "application/x-ndjson" });
    const session = new ProxySession(
      stream,
      { id, namespace: parts.namespace, service: parts.serviceAccount },
      opts,
    );
    sessions.add(session);
    stream.on("close", () => {
      sessions.delete(session);
      session.closed();
    });
  });

  return {
    server,
    sessions: () => [...sessions],
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
