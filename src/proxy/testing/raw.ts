// Raw bytes over a socket: for request-smuggling tests, where a real client would refuse to send.

import net from "node:net";
import tls from "node:tls";

export interface RawResponse {
  /** Everything received until the server closed (or the deadline passed). */
  text: string;
  statusLine: string;
  status: number;
  /** True when the server closed the connection (rather than the deadline ending the wait). */
  closedByServer: boolean;
}

/**
 * Sends `bytes` and collects the reply until the server closes or `waitMs` passes (a generous
 * upper bound, not a sleep: a server that closes returns at once).
 */
export function rawRequest(
  port: number,
  bytes: string | Buffer,
  opts: { waitMs?: number; tls?: tls.ConnectionOptions; /** Half-close after sending. */ end?: boolean } = {},
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const socket = opts.tls
      ? tls.connect({ host: "127.0.0.1", port, ...opts.tls })
      : net.connect(port, "127.0.0.1");
    let data = "";
    let closedByServer = false;
    const finish = () => {
      clearTimeout(timer);
      const statusLine = data.split("\r\n")[0] ?? "";
      resolve({ text: data, statusLine, status: Number(statusLine.split(" ")[1] ?? 0), closedByServer });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      finish();
    }, opts.waitMs ?? 3_000);
    socket.on("data", (d) => (data += d.toString("latin1")));
    socket.on("end", () => {
      closedByServer = true;
      socket.end();
    });
    socket.on("close", () => {
      if (data === "" || closedByServer) closedByServer = true;
      finish();
    });
    socket.on("error", () => {});
    socket.once(opts.tls ? "secureConnect" : "connect", () =>
      opts.end ? socket.end(bytes) : socket.write(bytes),
    );
  });
}
