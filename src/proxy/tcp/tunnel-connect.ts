// Opens the upstream side of a proxied TCP connection to one endpoint:
// - an endpoint with an identity (a sidecar): mutual TLS with ALPN TCP_TUNNEL_ALPN, the server's
//   SPIFFE ID checked against the endpoint's, then the tunnel request naming the service port, and
//   the server sidecar's answer ("ok" once its app accepted, tunnel-protocol.ts);
// - an endpoint without one (a static workload, no sidecar): a plain TCP connection.
// The whole of it is bounded by the connect timeout. Every failure is a ProxyError: nothing was read
// from the client yet, so the caller may try another endpoint.

import net from "node:net";
import tls from "node:tls";
import type { Socket } from "node:net";
import { peerSpiffeId } from "../../pki/spiffe.ts";
import { ProxyError } from "../errors.ts";
import { MIN_TLS_VERSION } from "../tls/secure-context.ts";
import type { ClientTls } from "../transport/client-tls.ts";
import { endpointKey, type EndpointAddress } from "../transport/connector.ts";
import { encodeRequest, parseAnswer, readLine, TCP_TUNNEL_ALPN } from "./tunnel-protocol.ts";

export interface TunnelTarget extends EndpointAddress {
  /** The destination service port the server sidecar forwards to (its app's port for it). */
  servicePort: number;
}

export function connectTunnel(
  ep: TunnelTarget,
  clientTls: ClientTls,
  timeoutMs: number,
  done: (err: ProxyError | undefined, socket: Socket | undefined) => void,
): void {
  const where = `${ep.address}:${ep.port}`;
  let settled = false;
  let socket: Socket;
  const timer = setTimeout(
    () => fail(new ProxyError("WEFT_ERR_UPSTREAM_CONNECT", `${where} did not answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const fail = (err: ProxyError) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.destroy();
    done(err, undefined);
  };
  const succeed = () => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.removeListener("error", onError);
    done(undefined, socket);
  };
  let tcpUp = false;
  const onError = (err: Error) => {
    if (err instanceof ProxyError) return fail(err);
    const code = (err as { code?: string }).code;
    if (ep.identity !== undefined && tcpUp) {
      clientTls.forget(endpointKey(ep));
      return fail(
        new ProxyError("WEFT_ERR_UPSTREAM_TLS", `TLS handshake with ${where} failed: ${err.message}`, {
          cause: err,
        }),
      );
    }
    const what = code === "ECONNREFUSED" ? "refused the connection" : `unreachable (${code ?? err.message})`;
    fail(new ProxyError("WEFT_ERR_UPSTREAM_CONNECT", `${where} ${what}`, { cause: err }));
  };

  const identity = ep.identity;
  if (identity === undefined) {
    socket = net.connect({ host: ep.address, port: ep.port, allowHalfOpen: true, noDelay: true });
    socket.on("error", onError);
    socket.once("connect", succeed);
    return;
  }
  const context = clientTls.context;
  if (context === undefined) {
    clearTimeout(timer);
    done(new ProxyError("WEFT_ERR_NO_CERTIFICATE", "no workload certificate yet"), undefined);
    return;
  }
  const key = endpointKey(ep);
  const t = tls.connect({
    host: ep.address,
    port: ep.port,
    secureContext: context,
    session: clientTls.session(key),
    ALPNProtocols: [TCP_TUNNEL_ALPN],
    minVersion: MIN_TLS_VERSION,
    rejectUnauthorized: true,
    // Half-close passes through the tunnel (Node's tls.connect takes it; its types do not list it).
    ...({ allowHalfOpen: true } as object),
    checkServerIdentity: (_host, cert) => {
      const got = peerSpiffeId(cert);
      if (got === identity) return undefined;
      return new ProxyError(
        "WEFT_ERR_UPSTREAM_IDENTITY",
        `${where} presented ${got ? `SPIFFE ID ${got}` : "no SPIFFE ID"}, expected ${identity}`,
      );
    },
  });
  socket = t;
  t.setNoDelay(true);
  t.on("error", onError);
  t.on("session", (s: Buffer) => clientTls.saveSession(key, context, s));
  t.once("connect", () => (tcpUp = true));
  t.once("secureConnect", () => {
    if (t.alpnProtocol !== TCP_TUNNEL_ALPN) {
      return fail(
        new ProxyError(
          "WEFT_ERR_UPSTREAM_TLS",
          `${where} does not accept TCP tunnels (ALPN ${TCP_TUNNEL_ALPN})`,
        ),
      );
    }
    t.write(encodeRequest(ep.servicePort));
    readLine(t, timeoutMs, (err, line) => {
      if (settled) return;
      if (err)
        return fail(new ProxyError("WEFT_ERR_UPSTREAM_CONNECT", `${where}: ${err.message}`, { cause: err }));
      const answer = parseAnswer(line);
      if (answer.ok) return succeed();
      fail(new ProxyError("WEFT_ERR_UPSTREAM_CONNECT", `${where} answered ${answer.code}: ${answer.detail}`));
    });
  });
}
