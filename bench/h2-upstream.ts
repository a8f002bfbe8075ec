// The HTTP/2 cases' upstream: a node:http2 server over cleartext (h2c with prior knowledge) answering
// every request with the same 100-byte body as bench/upstream.ts. The same port also answers
// HTTP/1.1 (the first bytes decide: the h2 preface starts "PRI "), so the sidecar pair can be
// measured while the server sidecar still speaks HTTP/1.1 to apps; every response carries
// `x-bench-app-protocol: 2.0` or `1.1`, which the case's check reports. Prints
// "h2-upstream listening 127.0.0.1:PORT" once it is up.
// Usage: node bench/h2-upstream.ts [PORT]   (0 or none = any free port)

import { createServer as createH1Server } from "node:http";
import {
  createServer as createH2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from "node:http2";
import { createServer as createNetServer, type Socket } from "node:net";
import { UPSTREAM_BODY } from "./upstream.ts";

/** Response header naming the HTTP version the upstream was spoken to in. */
export const APP_PROTOCOL_HEADER = "x-bench-app-protocol";

const PREFACE_START = Buffer.from("PRI ");

if (import.meta.main) {
  const headers = (version: string) => ({
    "content-type": "text/plain",
    "content-length": String(UPSTREAM_BODY.length),
    [APP_PROTOCOL_HEADER]: version,
  });
  const h2 = createH2Server(
    { settings: { maxConcurrentStreams: 1000 } },
    (req: Http2ServerRequest, res: Http2ServerResponse) => {
      req.resume();
      res.writeHead(200, headers("2.0")).end(UPSTREAM_BODY);
    },
  );
  const h1 = createH1Server((_req, res) => {
    res.writeHead(200, headers("1.1")).end(UPSTREAM_BODY);
  });
  h1.keepAliveTimeout = 120_000;
  h1.headersTimeout = 125_000;
  const server = createNetServer((socket: Socket) => {
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, PREFACE_START.length);
      const isH2 = seen.subarray(0, n).equals(PREFACE_START.subarray(0, n));
      if (isH2 && n < PREFACE_START.length) return; // too few bytes to tell yet
      socket.off("data", onData);
      socket.pause();
      socket.unshift(seen);
      // node:http2 feeds data already read (the unshifted bytes) to its session itself; the HTTP/1.1
      // server resumes the socket when it attaches its reader.
      (isH2 ? h2 : h1).emit("connection", socket);
      if (!isH2) socket.resume();
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });
  server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
    const port = (server.address() as { port: number }).port;
    console.log(`h2-upstream listening 127.0.0.1:${port}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
