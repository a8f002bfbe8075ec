// The server sidecar's end of a TCP tunnel (tunnel-protocol.ts): an mTLS connection from a peer
// sidecar that negotiated TCP_TUNNEL_ALPN on the inbound port. The peer must carry a SPIFFE ID of
// the mesh's trust domain (as for HTTP); its request line names a service port that the proxy's own
// Service declares with `protocol: tcp` (a tunnel to an HTTP port would skip HTTP policy, so it is
// refused). The app's port for it is connected (bounded by the connect timeout), the peer is told
// "ok", and the bytes are spliced both ways. Every refusal is an error line naming what was wrong,
// then the connection closes.

import net from "node:net";
import type { TLSSocket } from "node:tls";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import type { LocalReplyCode } from "../errors.ts";
import { attachTlsPeer } from "../inbound/peer.ts";
import type { ProxyMetrics, TcpStats } from "../metrics/registry.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../transport/connector.ts";
import { DEFAULT_TCP_IDLE_TIMEOUT_MS, splice } from "./splice.ts";
import { encodeError, encodeOk, parseRequest, readLine } from "./tunnel-protocol.ts";

export interface InboundTunnelOptions {
  config: Source<ProxySnapshot>;
  tls: Source<TlsMaterial>;
  metrics: ProxyMetrics;
  /** How long the peer may take to send its request line (ms). Default 10 s. */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/** Returns the handler for the inbound listener's ALPN registry. */
export function inboundTunnelHandler(opts: InboundTunnelOptions): (socket: TLSSocket) => void {
  const stats = new Map<string, TcpStats>();
  const statsFor = (source: string, destination: string): TcpStats => {
    const key = `${source} ${destination}`;
    let s = stats.get(key);
    if (s === undefined) stats.set(key, (s = opts.metrics.tcpStats("inbound", source, destination)));
    return s;
  };
  const refused = (reason: string) => opts.metrics.tlsHandshakeFailures.series("inbound", reason);

  return (socket) => {
    socket.on("error", () => socket.destroy());
    const peer = attachTlsPeer(socket, opts.tls.current()?.spiffeId);
    if (peer === undefined) {
      refused("no_spiffe_id").value++;
      return void socket.destroy();
    }
    const refuse = (code: LocalReplyCode, detail: string) => {
      socket.end(encodeError(code, detail));
      // The peer reads the line and closes; one that does not is cut.
      setTimeout(() => socket.destroy(), 2_000).unref();
    };
    readLine(socket, opts.requestTimeoutMs ?? 10_000, (err, line) => {
      if (err) return void socket.destroy();
      const s = opts.config.current();
      if (s === undefined) return refuse("not_ready", "the proxy has no config from the control plane yet");
      if (peer.trustDomain !== s.mesh.trustDomain)
        return refuse("untrusted_peer", `peer ${peer.id} is not of trust domain ${s.mesh.trustDomain}`);
      const req = parseRequest(line);
      if ("error" in req) return refuse("bad_request", req.error);
      const destination = `${s.proxy.service}.${s.proxy.namespace}`;
      const port = s.inbound.ports?.find((p) => p.port === req.port);
      if (port?.protocol !== "tcp") return refuse("no_route", `${destination} has no tcp port ${req.port}`);
      const where = `${s.inbound.appAddress}:${port.appPort}`;
      const timeout = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
      const app = net.connect({
        host: s.inbound.appAddress,
        port: port.appPort,
        allowHalfOpen: true,
        noDelay: true,
      });
      const timer = setTimeout(() => app.destroy(new Error(`no answer within ${timeout} ms`)), timeout);
      const abandon = () => app.destroy(); // the peer left while we connected
      socket.once("close", abandon);
      app.once("error", (e: Error & { code?: string }) => {
        clearTimeout(timer);
        socket.removeListener("close", abandon);
        if (!socket.destroyed)
          refuse(
            "upstream_unavailable",
            `app at ${where}: ${e.code === "ECONNREFUSED" ? "refused the connection" : e.message}`,
          );
      });
      app.once("connect", () => {
        clearTimeout(timer);
        socket.removeListener("close", abandon);
        app.removeAllListeners("error");
        socket.write(encodeOk());
        splice(socket, app, {
          stats: statsFor(peer.service, destination),
          idleTimeoutMs: opts.idleTimeoutMs ?? DEFAULT_TCP_IDLE_TIMEOUT_MS,
        });
      });
    });
  };
}
