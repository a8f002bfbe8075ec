// A test app that records the exact bytes it receives: a raw TCP server that splits its input with
// the strict reference parser (strict-http.ts) and answers each complete request with a small 200.
// Anything the strict parser refuses is recorded as `malformed` (the proxy sent bytes a strict
// server would reject) and the connection is closed. Memory stays bounded: `take()` empties it.

import net from "node:net";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { parseStrict, type StrictRequest } from "./strict-http.ts";

export interface RawApp {
  port: number;
  /** Complete requests received since the last take(). */
  requests: StrictRequest[];
  /** Strict-parser refusals of what the proxy sent, since the last take(). */
  malformed: string[];
  /** Connections holding part of a request (or an unanswered one). */
  busy(): number;
  take(): { requests: StrictRequest[]; malformed: string[] };
  close(): Promise<void>;
}

const MAX_BUFFERED = 1 << 20;
const REPLY = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
const HEAD_REPLY = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";

export async function startRawApp(): Promise<RawApp> {
  const app: RawApp = {
    port: 0,
    requests: [],
    malformed: [],
    busy: () => busy.size,
    take() {
      const out = { requests: app.requests, malformed: app.malformed };
      app.requests = [];
      app.malformed = [];
      return out;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, "close").catch(() => {});
    },
  };
  const sockets = new Set<net.Socket>();
  const busy = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let buf: Buffer = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("close", () => {
      sockets.delete(socket);
      busy.delete(socket);
    });
    socket.on("data", (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const p = parseStrict(buf);
      let out = "";
      for (const r of p.requests) {
        app.requests.push(r);
        out += r.method === "HEAD" ? HEAD_REPLY : REPLY;
      }
      buf = buf.subarray(p.consumed);
      if (out !== "") socket.write(out);
      if (p.error !== undefined || buf.length > MAX_BUFFERED) {
        app.malformed.push(p.error ?? "more than 1 MiB buffered");
        busy.delete(socket);
        socket.destroy();
        return;
      }
      if (buf.length > 0) busy.add(socket);
      else busy.delete(socket);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  app.port = (server.address() as AddressInfo).port;
  return app;
}
