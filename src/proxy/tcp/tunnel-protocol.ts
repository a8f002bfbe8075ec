// The sidecar-to-sidecar TCP tunnel: a mutual-TLS connection whose ALPN is TCP_TUNNEL_ALPN, then
// one line each way before the bytes flow.
//
//   client sidecar → server sidecar   "tcp <service port>\n"
//   server sidecar → client sidecar   "ok\n"                       the app accepted; bytes follow
//                                     "error <code> <detail>\n"    then the server closes
//
// The client sidecar waits for the answer before it reads anything from its client, so a failed
// destination (its sidecar, or its app refused) can still be retried on another endpoint with
// nothing lost; the wait is one round trip, like an HTTP CONNECT's 200. The server's bytes after
// "ok\n" (a server-speaks-first greeting) may arrive in the same read: the reader hands them back.
// Lines are bounded (MAX_LINE_BYTES) and must arrive within a timeout: the other side is untrusted.

import type { Socket } from "node:net";
import type { LocalReplyCode } from "../errors.ts";

export const TCP_TUNNEL_ALPN = "weft-tcp/1";
export const MAX_LINE_BYTES = 256;

export function encodeRequest(servicePort: number): string {
  return `tcp ${servicePort}\n`;
}

/** The service port a request line names, or a description of what is wrong with it. */
export function parseRequest(line: string): { port: number } | { error: string } {
  const m = /^tcp ([1-9][0-9]{0,4})$/.exec(line);
  const port = m ? Number(m[1]) : NaN;
  if (!(port >= 1 && port <= 65535)) return { error: `malformed tunnel request ${JSON.stringify(line)}` };
  return { port };
}

export function encodeOk(): string {
  return "ok\n";
}

/** An error line; the detail is cut to fit the line limit and stripped of line breaks. */
export function encodeError(code: LocalReplyCode, detail: string): string {
  const room = MAX_LINE_BYTES - code.length - 8;
  const clean = detail.replace(/[\r\n]+/g, " ");
  return `error ${code} ${clean.length > room ? clean.slice(0, room) : clean}\n`;
}

export type TunnelAnswer = { ok: true } | { ok: false; code: string; detail: string };

export function parseAnswer(line: string): TunnelAnswer {
  if (line === "ok") return { ok: true };
  const m = /^error ([a-z_]{1,40}) (.*)$/s.exec(line);
  if (m) return { ok: false, code: m[1], detail: m[2] };
  return {
    ok: false,
    code: "upstream_reset",
    detail: `malformed tunnel answer ${JSON.stringify(line.slice(0, 60))}`,
  };
}

/**
 * Reads one "\n"-terminated line from `socket` (paused afterwards, with any bytes after the line
 * unshifted back), or fails: longer than MAX_LINE_BYTES, not within `timeoutMs`, or the socket ended
 * or failed first. Calls `done` exactly once.
 */
export function readLine(
  socket: Socket,
  timeoutMs: number,
  done: (err: Error | undefined, line: string) => void,
): void {
  let parts: Buffer[] = [];
  let size = 0;
  let settled = false;
  const timer = setTimeout(() => finish(new Error(`no tunnel line within ${timeoutMs} ms`), ""), timeoutMs);
  const onData = (chunk: Buffer) => {
    const nl = chunk.indexOf(10);
    if (nl < 0) {
      size += chunk.length;
      if (size > MAX_LINE_BYTES)
        return finish(new Error(`tunnel line longer than ${MAX_LINE_BYTES} bytes`), "");
      parts.push(chunk);
      return;
    }
    if (size + nl > MAX_LINE_BYTES)
      return finish(new Error(`tunnel line longer than ${MAX_LINE_BYTES} bytes`), "");
    parts.push(chunk.subarray(0, nl));
    const line = Buffer.concat(parts).toString("latin1");
    parts = [];
    socket.pause();
    if (nl + 1 < chunk.length) socket.unshift(chunk.subarray(nl + 1));
    finish(undefined, line);
  };
  const onEnd = () => finish(new Error("closed before the tunnel line"), "");
  const onError = (err: Error) => finish(err, "");
  function finish(err: Error | undefined, line: string): void {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.removeListener("data", onData);
    socket.removeListener("end", onEnd);
    socket.removeListener("error", onError);
    socket.removeListener("close", onEnd);
    done(err, line);
  }
  socket.on("data", onData);
  socket.on("end", onEnd);
  socket.on("close", onEnd);
  socket.on("error", onError);
  socket.resume();
}
