// The inbound port's front: looks at a connection's first byte and hands it to the TLS server
// (a TLS handshake record starts with 0x16) or, in PERMISSIVE mode, to the plaintext HTTP server.
// In STRICT mode a plaintext client gets a clear local reply (mtls_required) instead of a reset.
// Costs one extra read per connection, nothing per request.

import net from "node:net";
import type { Socket } from "node:net";

const TLS_HANDSHAKE = 0x16;

export interface SnifferTargets {
  tls(socket: Socket): void;
  /** Plaintext; `looksLikeHttp` when the first byte is an ASCII capital (a request method). */
  plaintext(socket: Socket, looksLikeHttp: boolean): void;
}

function ignoreError(): void {}

/** `firstByteTimeoutMs`: a connection silent that long is closed (the TLS server bounds the rest). */
export function createSniffingServer(targets: SnifferTargets, firstByteTimeoutMs: number): net.Server {
  // Half-open allowed: a TCP tunnel (../tcp/) passes a client's FIN on while the other direction
  // still flows; the HTTP servers end a half-closed connection themselves after their response.
  return net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    socket.on("error", ignoreError);
    const onTimeout = () => socket.destroy();
    socket.setTimeout(firstByteTimeoutMs, onTimeout);
    socket.once("data", (first: Buffer) => {
      socket.setTimeout(0);
      socket.removeListener("timeout", onTimeout);
      socket.pause();
      socket.unshift(first);
      const b = first[0];
      if (b === TLS_HANDSHAKE) targets.tls(socket);
      else targets.plaintext(socket, b >= 0x41 && b <= 0x5a);
    });
  });
}
