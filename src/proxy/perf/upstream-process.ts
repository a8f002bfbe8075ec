// Benchmark upstream: the smallest Node HTTP app, 100-byte responses, keep-alive.
// Usage: node upstream-process.ts <port>   (prints the bound port on stdout)

import http from "node:http";
import type { AddressInfo } from "node:net";

const body = Buffer.alloc(100, "x");
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { "content-type": "text/plain", "content-length": "100" });
  res.end(body);
});
server.keepAliveTimeout = 120_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
