// Opens one upstream connection for an endpoint's pool (undici calls this when it needs a socket).
// Plaintext for endpoints without an identity; mTLS for endpoints with one: our certificate as the
// client certificate, the trust bundle as CA, and the server's SPIFFE ID (its single URI SAN) must
// equal endpoint.identity exactly — otherwise the handshake fails (an error, not a warning).
// Every failure is a ProxyError (requestSent = false: nothing of the request was written yet), whose
// code ../errors.ts maps to a local reply; the request may then go to another endpoint.

import net from "node:net";
import tls from "node:tls";
import type { Socket } from "node:net";
import { peerSpiffeId } from "../../pki/spiffe.ts";
import { ProxyError } from "../errors.ts";
import type { Direction, ProxyMetrics } from "../metrics/registry.ts";
import type { CounterSeries } from "../metrics/families.ts";
import { ALPN_HTTP1, MIN_TLS_VERSION } from "../tls/secure-context.ts";
import type { ClientTls } from "./client-tls.ts";

export interface EndpointAddress {
  address: string;
  port: number;
  /** Expected SPIFFE ID of the server; present ⇒ mTLS. */
  identity?: string;
}

export type ConnectCallback = (err: Error | null, socket: Socket | null) => void;
export type Connector = (opts: unknown, callback: ConnectCallback) => void;

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Per-direction counters, bound once and shared by every endpoint's connector. */
export class ConnectionCounters {
  readonly active: CounterSeries;
  readonly total: CounterSeries;
  readonly activeTls: CounterSeries;
  readonly totalTls: CounterSeries;
  readonly resumed: CounterSeries;
  readonly refused: CounterSeries;
  readonly tlsFailed: CounterSeries;
  readonly identityMismatch: CounterSeries;
  readonly failedConnects: CounterSeries;

  constructor(metrics: ProxyMetrics, direction: Direction) {
    this.active = metrics.upstreamConnectionsActive.series(direction, "false");
    this.total = metrics.upstreamConnectionsTotal.series(direction, "false");
    this.activeTls = metrics.upstreamConnectionsActive.series(direction, "true");
    this.totalTls = metrics.upstreamConnectionsTotal.series(direction, "true");
    this.resumed = metrics.tlsSessionsResumed.series(direction);
    this.refused = metrics.upstreamConnectFailures.series(direction, "connect");
    this.failedConnects = metrics.upstreamConnectFailures.series(direction, "tls");
    this.tlsFailed = metrics.tlsHandshakeFailures.series(direction, "handshake");
    this.identityMismatch = metrics.tlsHandshakeFailures.series(direction, "identity_mismatch");
  }
}

export function endpointKey(ep: EndpointAddress): string {
  const host = ep.address.includes(":") ? `[${ep.address}]` : ep.address;
  return ep.identity ? `${host}:${ep.port}#${ep.identity}` : `${host}:${ep.port}`;
}

function verifyIdentity(expected: string, cert: tls.PeerCertificate): Error | undefined {
  const got = peerSpiffeId(cert);
  if (got === expected) return undefined;
  return new ProxyError(
    "WEFT_ERR_UPSTREAM_IDENTITY",
    `upstream presented ${got ? `SPIFFE ID ${got}` : "no SPIFFE ID"}, expected ${expected}`,
  );
}

/** A TCP connect failure (refused, unreachable, ...) as a typed, not-sent error. */
function connectError(err: Error): ProxyError {
  const code = (err as { code?: string }).code;
  const what = code === "ECONNREFUSED" ? "refused the connection" : `unreachable (${code ?? err.message})`;
  return new ProxyError("WEFT_ERR_UPSTREAM_CONNECT", what, { cause: err });
}

export function createConnector(
  ep: EndpointAddress,
  clientTls: ClientTls,
  counters: ConnectionCounters,
  connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
  /** ALPN protocols offered on mTLS connections (the server picks; see alpn-pool.ts). */
  alpn: string[] = ALPN_HTTP1,
): Connector {
  const key = endpointKey(ep);
  const where = `${ep.address}:${ep.port}`;

  return function connect(_opts, callback) {
    const identity = ep.identity;
    let socket: Socket;
    let tcpUp = false;
    let settled = false;
    let context: tls.SecureContext | undefined;

    if (identity !== undefined) {
      context = clientTls.context;
      if (context === undefined) {
        callback(new ProxyError("WEFT_ERR_NO_CERTIFICATE", "no workload certificate yet"), null);
        return;
      }
      const ctx = context;
      const t = tls.connect({
        host: ep.address,
        port: ep.port,
        secureContext: ctx,
        session: clientTls.session(key),
        ALPNProtocols: alpn,
        minVersion: MIN_TLS_VERSION,
        rejectUnauthorized: true,
        checkServerIdentity: (_host, cert) => verifyIdentity(identity, cert),
      });
      t.on("session", (s: Buffer) => clientTls.saveSession(key, ctx, s));
      t.once("connect", () => (tcpUp = true));
      t.once("secureConnect", ready);
      socket = t;
    } else {
      socket = net.connect({ host: ep.address, port: ep.port });
      socket.once("connect", ready);
    }
    socket.setNoDelay(true);
    socket.setTimeout(connectTimeoutMs, onTimeout);
    socket.on("error", failed);

    function ready(): void {
      if (settled) return;
      settled = true;
      socket.setTimeout(0);
      socket.removeListener("timeout", onTimeout);
      socket.removeListener("error", failed);
      if (identity !== undefined) {
        counters.totalTls.value++;
        counters.activeTls.value++;
        if ((socket as tls.TLSSocket).isSessionReused()) counters.resumed.value++;
        socket.once("close", () => counters.activeTls.value--);
      } else {
        counters.total.value++;
        counters.active.value++;
        socket.once("close", () => counters.active.value--);
      }
      callback(null, socket);
    }

    function onTimeout(): void {
      socket.destroy(
        new ProxyError(
          "WEFT_ERR_UPSTREAM_CONNECT",
          `did not accept the connection within ${connectTimeoutMs} ms`,
        ),
      );
    }

    function failed(err: Error): void {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (
        identity !== undefined &&
        (tcpUp || (err as { code?: string }).code === "WEFT_ERR_UPSTREAM_IDENTITY")
      ) {
        // The TCP connection was up: the TLS handshake failed (bad cert, wrong identity, peer refused ours).
        clientTls.forget(key);
        counters.failedConnects.value++;
        if ((err as { code?: string }).code === "WEFT_ERR_UPSTREAM_IDENTITY") {
          counters.identityMismatch.value++;
          callback(err, null);
        } else {
          counters.tlsFailed.value++;
          callback(
            new ProxyError("WEFT_ERR_UPSTREAM_TLS", `TLS handshake with ${where} failed: ${err.message}`, {
              cause: err,
            }),
            null,
          );
        }
        return;
      }
      counters.refused.value++;
      callback(err instanceof ProxyError ? err : connectError(err), null);
    }
  };
}
