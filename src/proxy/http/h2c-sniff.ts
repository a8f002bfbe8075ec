// A plaintext listener's front when it accepts both HTTP/1.1 and h2c with prior knowledge (RFC 9113
// §3.3): a client connection's first bytes are compared with the HTTP/2 connection preface
// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". The first byte that differs sends it to the HTTP/1.1 edge (so
// an HTTP/1.1 request waits for nothing: "GET", "POST", ... differ within two bytes); all 24 bytes
// matching send it to the HTTP/2 edge. A client that stays silent, or stops inside the preface, is
// closed after `timeoutMs`, and one that ends its side first is closed at once (nothing to answer).
// Until it is handed on, a connection is in `undecided`, which a draining listener closes at once.
// Costs one read per connection, nothing per request.

import net from "node:net";
import type { Socket } from "node:net";
import type { UndecidedSockets } from "./undecided-sockets.ts";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export interface SniffTargets {
  http1(socket: Socket): void;
  h2c(socket: Socket): void;
}

/** How many leading bytes of `seen` match the preface; -1 as soon as one differs. */
export function prefaceMatch(seen: Buffer): number {
  const n = Math.min(seen.length, PREFACE.length);
  for (let i = 0; i < n; i++) if (seen[i] !== PREFACE[i]) return -1;
  return n;
}

function ignoreError(): void {}

export function createH2cSniffer(
  targets: SniffTargets,
  timeoutMs: number,
  undecided: UndecidedSockets,
): net.Server {
  return net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    socket.on("error", ignoreError);
    undecided.add(socket);
    let seen: Buffer | undefined;
    const onTimeout = () => socket.destroy();
    // Half-open is for tunnels once served; a client that ends before it said what it speaks is gone.
    const onEnd = () => socket.destroy();
    const onData = (chunk: Buffer) => {
      seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
      const m = prefaceMatch(seen);
      if (m !== -1 && m < PREFACE.length) return; // a prefix of the preface so far: need more
      socket.removeListener("data", onData);
      socket.removeListener("end", onEnd);
      socket.removeListener("timeout", onTimeout);
      socket.setTimeout(0);
      undecided.decided(socket);
      socket.pause();
      socket.unshift(seen);
      if (m === -1) targets.http1(socket);
      else targets.h2c(socket);
    };
    socket.setTimeout(timeoutMs, onTimeout);
    socket.on("data", onData);
    socket.on("end", onEnd);
  });
}
