// CONNECT through the outbound listener. Node's fetch (undici's EnvHttpProxyAgent, under
// NODE_USE_ENV_PROXY) tunnels even http:// URLs through HTTP_PROXY with CONNECT. The tunnel's
// authority must be a mesh service; the proxy answers 200 and then serves the tunnel as an HTTP/1.1
// connection of its own, in which every request goes to that authority — routed, balanced and
// forwarded like any other; an Upgrade request in it (Node's built-in WebSocket tunnels ws:// URLs
// this way) is routed to that authority too (../upgrade/). A TLS client inside the tunnel (https://) fails its handshake: the
// proxy does not terminate TLS for apps; mesh traffic is plain HTTP from the app's side.
// CONNECT to a service port declared `tcp` is an opaque byte tunnel instead (openTcpTunnel): the
// 200 is sent once the destination accepted, a local reply (503, ...) when it did not.

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { LocalReplyCode } from "../errors.ts";
import { lingeringClose, type HttpEdge } from "../http/server-edge.ts";
import type { TcpProxy, TcpTarget } from "../tcp/tcp-proxy.ts";

const kTunnel = Symbol("weft.tunnel");
type TunnelSocket = Socket & { [kTunnel]?: string };

/** The CONNECT authority of a tunnelled connection, or undefined for an ordinary one. */
export function tunnelAuthorityOf(socket: Socket | null): string | undefined {
  return (socket as TunnelSocket | null)?.[kTunnel];
}

/**
 * Answers a CONNECT: `check` returns why the authority cannot be served (a local reply), or
 * undefined to open the tunnel.
 */
export function acceptConnect(
  edge: HttpEdge,
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  check: (authority: string) => [LocalReplyCode, string] | undefined,
): void {
  const authority = req.url ?? "";
  const refusal =
    authority === "" ? (["bad_request", "CONNECT without an authority"] as const) : check(authority);
  if (refusal !== undefined) {
    edge.replies.writeRaw(socket, refusal[0], refusal[1]);
    lingeringClose(socket);
    return;
  }
  socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
  (socket as TunnelSocket)[kTunnel] = authority;
  if (head.length > 0) socket.unshift(head);
  edge.server.emit("connection", socket);
  socket.resume();
}

/** CONNECT to a tcp service port: proxied as TCP; the answer waits for the destination. */
export function openTcpTunnel(
  edge: HttpEdge,
  socket: Socket,
  head: Buffer,
  tcp: TcpProxy,
  target: TcpTarget,
): void {
  // Nothing is read until the destination accepted: bytes the client sends early wait in the socket.
  socket.pause();
  if (head.length > 0) socket.unshift(head);
  tcp.serve(socket, target, (refusal) => {
    if (refusal === undefined) {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      return;
    }
    edge.replies.writeRaw(socket, refusal.code, refusal.detail);
    lingeringClose(socket);
  });
}
