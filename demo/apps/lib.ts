// What every demo app shares: a tiny HTTP server (GET /healthz, JSON replies, clean exit on SIGTERM)
// and a client that reaches other services by name through the sidecar's HTTP_PROXY.
//
// The apps know nothing about weft: they call `http://reviews:9080/...` as they would with any HTTP
// proxy. `weft run` sets HTTP_PROXY to its outbound listener; the sidecar resolves the service name,
// picks an instance, and connects to its sidecar over mTLS.

import {
  Agent,
  createServer,
  request,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface Reply {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/** Headers an app forwards from the request it serves to the calls it makes (tracing, as in Istio's bookinfo). */
const PROPAGATED = [
  "traceparent",
  "tracestate",
  "x-request-id",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-sampled",
  "b3",
];

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** The sidecar's outbound listener from HTTP_PROXY, e.g. { host: "127.0.0.1", port: 15001 }. */
export function outboundProxy(
  env: NodeJS.ProcessEnv = process.env,
): { host: string; port: number } | undefined {
  const raw = env.HTTP_PROXY ?? env.http_proxy;
  if (!raw) return undefined;
  const u = new URL(raw);
  return { host: u.hostname, port: Number(u.port || 80) };
}

/**
 * GET (or another method) `url` — e.g. "http://reviews:9080/reviews/1" — through the sidecar: an
 * absolute-form request to the proxy with `Host` naming the service. Without HTTP_PROXY it goes direct.
 */
export function callService(
  url: string,
  opts: { from?: IncomingMessage; method?: string; timeoutMs?: number } = {},
): Promise<Reply> {
  const target = new URL(url);
  const proxy = outboundProxy();
  const headers: Record<string, string> = { host: target.host, accept: "application/json" };
  for (const h of PROPAGATED) {
    const v = opts.from?.headers[h];
    if (typeof v === "string") headers[h] = v;
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        method: opts.method ?? "GET",
        host: proxy ? proxy.host : target.hostname,
        port: proxy ? proxy.port : Number(target.port || 80),
        path: proxy ? target.href : target.pathname + target.search,
        headers,
        timeout: opts.timeoutMs ?? 3000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = body ? JSON.parse(body) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer in ${opts.timeoutMs ?? 3000} ms`)));
    req.on("error", reject);
    req.end();
  });
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value) + "\n";
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Serves `handler` on 127.0.0.1:$PORT. GET /healthz answers for every app (with its pid, so the demo
 * can make sure it is gone after stopping). SIGTERM/SIGINT close the server and exit 0; the app also
 * exits if its parent (`weft run`) disappears, so no demo app outlives the demo.
 */
export function serve(service: string, version: string, handler: Handler): Server {
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0) {
    process.stderr.write(`${service}: PORT is not set (run me under \`weft run --port N\`)\n`);
    process.exit(2);
  }
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      return sendJson(res, 200, { status: "ok", service, version, pid: process.pid });
    }
    Promise.resolve(handler(req, res)).catch((err: Error) => {
      process.stderr.write(`${service}: ${req.method} ${req.url} failed: ${err.message}\n`);
      if (!res.headersSent) sendJson(res, 500, { error: err.message });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(port, "127.0.0.1", () => {
    console.log(
      `${service} ${version} listening on 127.0.0.1:${port} (sidecar: ${process.env.HTTP_PROXY ?? "none"})`,
    );
  });
  exitWithParent(() => server.close());
  const stop = (sig: string) => () => {
    console.log(`${service}: ${sig}, stopping`);
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once("SIGTERM", stop("SIGTERM"));
  process.once("SIGINT", stop("SIGINT"));
  return server;
}

/** Exits when the parent process goes away (its children get re-parented), after `cleanup`. */
export function exitWithParent(cleanup: () => void): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      process.stderr.write(`parent process ${parent} is gone; exiting\n`);
      cleanup();
      process.exit(0);
    }
  }, 500).unref();
}

/** The path part of a request, without the query. */
export function pathOf(req: IncomingMessage): string {
  return (req.url ?? "/").split("?")[0];
}
