// The plain Node peer: a node:http server forwarding every request to one upstream through an undici
// Pool with `dispatch` (no per-request streams or promises), keep-alive both sides. Minimal but fair:
// hop-by-hop headers are dropped, bodies are streamed both ways with backpressure, errors answer 502.
// It prints "node-proxy listening 127.0.0.1:PORT" once it is up.
// Usage: node bench/node-proxy.ts UPSTREAM_PORT [LISTEN_PORT]

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Pool, type Dispatcher } from "undici";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

function forwardHeaders(
  raw: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in raw) {
    const value = raw[name];
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

function forward(pool: Pool, req: IncomingMessage, res: ServerResponse): void {
  const hasBody =
    req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
  let controller: Dispatcher.DispatchController | undefined;
  res.once("close", () => {
    if (!res.writableFinished) controller?.abort(new Error("client went away"));
  });
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
    },
    onResponseStart(c, statusCode, headers) {
      res.writeHead(statusCode, forwardHeaders(headers));
    },
    onResponseData(c, chunk) {
      if (!res.write(chunk)) {
        c.pause();
        res.once("drain", () => c.resume());
      }
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError(_c, err) {
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "text/plain" }).end(`bad gateway: ${err.message}\n`);
      } else {
        res.destroy(err);
      }
    },
  };
  pool.dispatch(
    {
      method: req.method as Dispatcher.HttpMethod,
      path: req.url ?? "/",
      headers: forwardHeaders(req.headers),
      body: hasBody ? req : null,
    },
    handler,
  );
}

if (import.meta.main) {
  const upstreamPort = Number(process.argv[2]);
  if (!upstreamPort) throw new Error("usage: node bench/node-proxy.ts UPSTREAM_PORT [LISTEN_PORT]");
  const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, {
    connections: 128,
    pipelining: 1,
    keepAliveTimeout: 60_000,
  });
  const server = createServer((req, res) => forward(pool, req, res));
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.listen(Number(process.argv[3] ?? 0), "127.0.0.1", () => {
    const port = (server.address() as { port: number }).port;
    console.log(`node-proxy listening 127.0.0.1:${port}`);
  });
  const stop = () => {
    server.close();
    pool.close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
