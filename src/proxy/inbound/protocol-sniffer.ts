// The inbound port's front: detects what a new connection speaks and hands it on. A TLS handshake
// record (first byte 0x16) goes to the mTLS front, where ALPN declares the protocol (h2, http/1.1, the
// TCP tunnel) and nothing more is guessed. Anything else is plaintext, served only in PERMISSIVE mode
// (STRICT answers an HTTP-looking client with a clear local reply, mtls_required, and drops the rest):
//   - the HTTP/2 connection preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" → h2 (prior knowledge);
//   - a first byte that can start a request method (ASCII capital) → HTTP/1.x;
//   - any other bytes → opaque;
//   - no byte within the detection timeout → silent (a server-speaks-first protocol, e.g. MySQL or
//     SMTP: the listener treats it as opaque in PERMISSIVE mode, so the app can greet).
// Detection is bounded: at most the 24 bytes of the preface are read, within the detection timeout
// (the client that stops inside the preface is treated as opaque, never waited for). Costs one read
// per connection, nothing per request. A declared protocol always wins: mesh peers declare theirs with
// ALPN, so this guessing only ever applies to plaintext (PERMISSIVE) clients. Until a connection is
// handed on it is in `undecided`, which a draining listener closes at once (it carries no request).

import net from "node:net";
import type { Socket } from "node:net";
import { prefaceMatch } from "../http/h2c-sniff.ts";
import type { UndecidedSockets } from "../http/undecided-sockets.ts";

const TLS_HANDSHAKE = 0x16;
const PREFACE_LENGTH = 24;

/** What a plaintext connection looks like. */
export type PlaintextKind = "http1" | "h2" | "opaque" | "silent";

export interface SnifferTargets {
  tls(socket: Socket): void;
  plaintext(socket: Socket, kind: PlaintextKind): void;
  /** Whether a silent connection is served (PERMISSIVE: as opaque) rather than waited for. */
  acceptsSilent(): boolean;
}

function ignoreError(): void {}

/** What the bytes seen so far say; undefined while they are a proper prefix of the h2 preface. */
export function classify(seen: Buffer): "tls" | Exclude<PlaintextKind, "silent"> | undefined {
  const b = seen[0];
  if (b === TLS_HANDSHAKE) return "tls";
  const m = prefaceMatch(seen);
  if (m === PREFACE_LENGTH) return "h2";
  if (m !== -1) return undefined;
  return b >= 0x41 && b <= 0x5a ? "http1" : "opaque";
}

/** How long protocol detection waits for a plaintext client's first bytes (Linkerd waits longer, 10 s). */
export const DEFAULT_DETECT_TIMEOUT_MS = 1_000;

/**
 * `detectTimeoutMs`: how long a silent connection (or one stopped inside the h2 preface) is waited for
 * before it is handed on as "silent" / "opaque". A silent connection the targets do not accept is
 * waited for up to `firstByteTimeoutMs` in all, then closed (the TLS and HTTP servers bound the rest).
 */
export function createSniffingServer(
  targets: SnifferTargets,
  detectTimeoutMs: number,
  firstByteTimeoutMs: number,
  undecided: UndecidedSockets,
): net.Server {
  // Half-open allowed: a TCP tunnel (../tcp/) passes a client's FIN on while the other direction
  // still flows; the HTTP servers end a half-closed connection themselves after their response.
  return net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    socket.on("error", ignoreError);
    undecided.add(socket);
    let seen: Buffer | undefined;
    const handOn = (kind: "tls" | PlaintextKind) => {
      socket.removeListener("data", onData);
      socket.removeListener("timeout", onTimeout);
      socket.setTimeout(0);
      undecided.decided(socket);
      socket.pause();
      if (seen !== undefined) socket.unshift(seen);
      if (kind === "tls") targets.tls(socket);
      else targets.plaintext(socket, kind);
    };
    let waited = detectTimeoutMs;
    const onTimeout = () => {
      if (seen !== undefined) return handOn("opaque");
      if (targets.acceptsSilent()) return handOn("silent");
      if (waited >= firstByteTimeoutMs) return void socket.destroy();
      socket.setTimeout(firstByteTimeoutMs - waited);
      waited = firstByteTimeoutMs;
    };
    const onData = (chunk: Buffer) => {
      seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
      const kind = classify(seen);
      if (kind !== undefined) handOn(kind);
    };
    // on(), not setTimeout's callback (a once listener): a silent STRICT client times out twice.
    socket.on("timeout", onTimeout);
    socket.setTimeout(Math.min(detectTimeoutMs, firstByteTimeoutMs));
    socket.on("data", onData);
  });
}
