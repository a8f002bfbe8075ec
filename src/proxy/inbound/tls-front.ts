// The inbound listener's mTLS termination, shared by every protocol a peer sidecar may speak: one
// tls.Server (never listening itself: the protocol sniffer hands it TLS connections) with the same
// checks for all — a client certificate chaining to the trust bundle is required, TLS 1.3 only, the
// handshake bounded in time, and the peer's single weft SPIFFE ID read once and attached to the
// socket (peer.ts; none → the connection is refused). Then the negotiated ALPN protocol picks who
// gets the decrypted socket: the handler registered for it (registerAlpn: "h2" → the HTTP/2 edge,
// a tunnel protocol → the TCP proxy), else the HTTP/1.1 edge (a client that asked for http/1.1 or
// for nothing). The server's preference is the registration order, HTTP/1.1 last.

import type { Socket } from "node:net";
import tls from "node:tls";
import type { TLSSocket } from "node:tls";
import type { ProxyMetrics } from "../metrics/registry.ts";
import { MIN_TLS_VERSION, serverContextOptions } from "../tls/secure-context.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { attachTlsPeer } from "./peer.ts";
import { tlsFailureReason } from "./tls-failures.ts";

export type AlpnHandler = (socket: TLSSocket) => void;

const HTTP1 = "http/1.1";

export class TlsFront {
  readonly server: tls.Server;
  readonly #handlers = new Map<string, AlpnHandler>();
  readonly #http1: AlpnHandler;
  readonly #tls: Source<TlsMaterial>;
  #unsubscribe: () => void;

  constructor(opts: {
    tls: Source<TlsMaterial>;
    metrics: ProxyMetrics;
    handshakeTimeoutMs: number;
    /** Connections that negotiated http/1.1 or no protocol. */
    http1: AlpnHandler;
  }) {
    this.#tls = opts.tls;
    this.#http1 = opts.http1;
    const material = opts.tls.current();
    this.server = tls.createServer({
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: MIN_TLS_VERSION,
      handshakeTimeout: opts.handshakeTimeoutMs,
      ALPNCallback: ({ protocols }) => this.#select(protocols),
      ...(material ? serverContextOptions(material) : {}),
    });
    const metrics = opts.metrics;
    this.server.on("secureConnection", (socket: TLSSocket) => {
      if (attachTlsPeer(socket, this.#tls.current()?.spiffeId) === undefined) {
        metrics.tlsHandshakeFailures.series("inbound", "no_spiffe_id").value++;
        socket.destroy();
        return;
      }
      const handler = socket.alpnProtocol ? this.#handlers.get(socket.alpnProtocol) : undefined;
      try {
        (handler ?? this.#http1)(socket);
      } catch (err) {
        process.emitWarning(err as Error, { code: "WEFT_PROXY_BUG" });
        socket.destroy();
      }
    });
    this.server.on("tlsClientError", (err: Error, socket: TLSSocket) => {
      metrics.tlsHandshakeFailures.series("inbound", tlsFailureReason(err, socket.authorizationError))
        .value++;
      // tls.Server leaves the socket open once someone listens for this (a timed-out handshake too).
      socket.destroy();
    });
    this.#unsubscribe = opts.tls.subscribe((m) => this.server.setSecureContext(serverContextOptions(m)));
  }

  /** Hands connections that negotiate `id` to `handler` (preferred over protocols registered later). */
  registerAlpn(id: string, handler: AlpnHandler): void {
    if (id === HTTP1) throw new Error("http/1.1 is the TLS front's default protocol");
    this.#handlers.set(id, handler);
  }

  /** The ALPN protocols the server accepts, most preferred first. */
  get protocols(): string[] {
    return [...this.#handlers.keys(), HTTP1];
  }

  /** A TLS connection accepted by the front (its first byte was a handshake record). */
  accept(socket: Socket): void {
    this.server.emit("connection", socket);
  }

  close(): void {
    this.#unsubscribe();
  }

  // Ours first (a client lists its own preference; RFC 7301 lets the server choose). A client that
  // offers only protocols we do not speak gets no_application_protocol (undefined ends the handshake).
  #select(offered: string[]): string | undefined {
    for (const id of this.#handlers.keys()) if (offered.includes(id)) return id;
    return offered.includes(HTTP1) ? HTTP1 : undefined;
  }
}
