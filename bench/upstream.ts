// The benchmark's upstream: a node:http server answering every request with the same 100-byte body
// over HTTP/1.1 keep-alive. It prints "upstream listening 127.0.0.1:PORT" once it is up.
// Usage: node bench/upstream.ts [PORT]   (0 or none = any free port)

import { createServer } from "node:http";

export const UPSTREAM_BODY = Buffer.from("weft bench upstream: ".padEnd(99, "x") + "\n");
if (UPSTREAM_BODY.length !== 100) throw new Error("upstream body must be 100 bytes");

const headers = { "content-type": "text/plain", "content-length": String(UPSTREAM_BODY.length) };

if (import.meta.main) {
  // node:http discards an unread request body itself once the response ends.
  const server = createServer((_req, res) => {
    res.writeHead(200, headers).end(UPSTREAM_BODY);
  });
  // Keep idle proxy connections open between benchmark phases.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
    const port = (server.address() as { port: number }).port;
    console.log(`upstream listening 127.0.0.1:${port}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
