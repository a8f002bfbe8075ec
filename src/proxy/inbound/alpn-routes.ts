// The inbound TLS server's ALPN registry: connections whose negotiated protocol has a handler here
// (e.g. the TCP tunnel, "weft-tcp/1") are taken away from the HTTP server once the handshake is done;
// every other connection goes to the HTTP server as before. The HTTP server's own 'secureConnection'
// listeners are wrapped, so they never see a diverted connection.

import type { Server } from "node:net";
import type { TLSSocket } from "node:tls";

export type AlpnHandler = (socket: TLSSocket) => void;

/** Call after every 'secureConnection' listener of `server` is registered. */
export function routeByAlpn(server: Server, handlers: Readonly<Record<string, AlpnHandler>>): void {
  if (Object.keys(handlers).length === 0) return;
  const http = server.listeners("secureConnection") as ((s: TLSSocket) => void)[];
  server.removeAllListeners("secureConnection");
  server.on("secureConnection", (socket: TLSSocket) => {
    const alpn = socket.alpnProtocol;
    const handler = typeof alpn === "string" ? handlers[alpn] : undefined;
    if (handler !== undefined) return handler(socket);
    for (const l of http) l.call(server, socket);
  });
}
