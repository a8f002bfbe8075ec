// What every demo app shares: a tiny HTTP server (GET /healthz, JSON replies, clean exit on SIGTERM,
// a chaos switch), and a client that reaches other services by name through the sidecar's HTTP_PROXY.
//
// The chaos switch breaks an app on purpose, to show what retries, outlier ejection and circuit
// breaking do about it: `POST /chaos?fail=0.3&status=503&delay=200` makes the app wait 200 ms before
// each request and then answer 30% of them with 503; `POST /chaos?reset` turns it off; GET /chaos
// shows it. `weft demo chaos` sends these for you.
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

/**
 * Headers an app forwards from the request it serves to the calls it makes: tracing, as in Istio's
 * bookinfo, and the demo's user (x-demo-user), so a route on reviews can match who asked the storefront.
 */
const PROPAGATED = [
  "x-demo-user",
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
  opts: {
    from?: IncomingMessage;
    method?: string;
    timeoutMs?: number;
    headers?: Record<string, string>;
  } = {},
): Promise<Reply> {
  const target = new URL(url);
  const proxy = outboundProxy();
  const headers: Record<string, string> = { ...opts.headers, host: target.host, accept: "application/json" };
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
 * can make sure it is gone after stopping), and so does the chaos switch (/chaos); chaos never
 * touches /healthz. SIGTERM/SIGINT close the server and exit 0; the app also exits if its parent
 * (`weft run`) disappears, so no demo app outlives the demo.
 */
export function serve(service: string, version: string, handler: Handler): Server {
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0) {
    process.stderr.write(`${service}: PORT is not set (run me under \`weft run --port N\`)\n`);
    process.exit(2);
  }
  const chaotic = withChaos(`${service} ${version}`, handler);
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      return sendJson(res, 200, { status: "ok", service, version, pid: process.pid });
    }
    Promise.resolve(chaotic(req, res)).catch((err: Error) => {
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

// --- the chaos switch ---

export interface ChaosSettings {
  /** Share of requests answered with `status` instead of being served, 0 to 1. */
  fail: number;
  /** The status those requests get (400-599). */
  status: number;
  /** Milliseconds every request waits before it is served (or failed). */
  delayMs: number;
}

export const NO_CHAOS: Readonly<ChaosSettings> = { fail: 0, status: 503, delayMs: 0 };
const CHAOS_KEYS = ["fail", "status", "delay", "reset"];
const MAX_CHAOS_DELAY_MS = 60_000;

/** A chaos request that makes no sense; its message says what would. */
export class ChaosError extends Error {}

/**
 * `fail=0.3&status=503&delay=200` (or `reset`) → settings. Each call sets everything: a setting left
 * out is off (fail 0, delay 0, status 503). `fail` is a fraction or a percentage ("30%"); `delay`
 * is in milliseconds, or written with a unit ("200ms", "1s").
 */
export function parseChaos(params: URLSearchParams): ChaosSettings {
  const keys = [...params.keys()];
  const unknown = keys.filter((k) => !CHAOS_KEYS.includes(k));
  if (unknown.length)
    throw new ChaosError(
      `unknown chaos setting ${JSON.stringify(unknown[0])} (settings: fail=0.3, status=503, delay=200, or reset)`,
    );
  if (keys.length === 0) throw new ChaosError("nothing to set: e.g. fail=0.3&status=503&delay=200, or reset");
  if (params.has("reset")) {
    if (keys.some((k) => k !== "reset")) throw new ChaosError("reset takes no other settings");
    return { ...NO_CHAOS };
  }
  const out = { ...NO_CHAOS };
  const fail = params.get("fail");
  if (fail !== null) {
    const pct = fail.endsWith("%");
    const n = Number(pct ? fail.slice(0, -1) : fail) / (pct ? 100 : 1);
    if (fail.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1)
      throw new ChaosError(
        `fail must be a fraction from 0 to 1 or a percentage (got ${JSON.stringify(fail)})`,
      );
    out.fail = n;
  }
  const status = params.get("status");
  if (status !== null) {
    const n = Number(status);
    if (!Number.isInteger(n) || n < 400 || n > 599)
      throw new ChaosError(`status must be an HTTP error status, 400 to 599 (got ${JSON.stringify(status)})`);
    if (fail === null) throw new ChaosError(`status=${n} needs fail=… (the share of requests that get it)`);
    out.status = n;
  }
  const delay = params.get("delay");
  if (delay !== null) {
    const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(delay.trim());
    const n = m ? Number(m[1]) * (m[2] === "s" ? 1000 : 1) : NaN;
    if (!(n >= 0 && n <= MAX_CHAOS_DELAY_MS))
      throw new ChaosError(
        `delay must be milliseconds from 0 to ${MAX_CHAOS_DELAY_MS}, e.g. 200 or 1s (got ${JSON.stringify(delay)})`,
      );
    out.delayMs = Math.round(n);
  }
  return out;
}

/** "fails 30% of requests with 503, delays every request by 200 ms", or "off". */
export function describeChaos(s: ChaosSettings): string {
  const parts: string[] = [];
  if (s.fail > 0)
    parts.push(
      s.fail === 1
        ? `fails every request with ${s.status}`
        : `fails ${+(s.fail * 100).toFixed(2)}% of requests with ${s.status}`,
    );
  if (s.delayMs > 0) parts.push(`delays every request by ${s.delayMs} ms`);
  return parts.length ? parts.join(", ") : "off";
}

/** One app's chaos state. `random` is injectable so tests can make decisions deterministic. */
export class Chaos {
  settings: ChaosSettings = { ...NO_CHAOS };
  private readonly random: () => number;

  constructor(random: () => number = Math.random) {
    this.random = random;
  }

  /** Before a request is served: waits the delay, then says which status to fail it with, if any. */
  async before(): Promise<number | undefined> {
    const { delayMs, fail, status } = this.settings;
    if (delayMs > 0) await sleep(delayMs);
    return fail > 0 && this.random() < fail ? status : undefined;
  }
}

/**
 * `handler` behind the chaos switch: POST /chaos (settings in the query string, or in the body as a
 * form or a JSON object) changes `chaos` and answers what it is now; GET /chaos shows it; every
 * other request goes through `chaos.before()` first.
 */
export function withChaos(
  name: string,
  handler: Handler,
  chaos = new Chaos(),
  log: (line: string) => void = (line) => console.log(line),
): Handler {
  return async (req, res) => {
    if (pathOf(req) !== "/chaos") {
      const failWith = await chaos.before();
      if (failWith === undefined) return handler(req, res);
      res.setHeader("x-demo-chaos", "fail");
      return sendJson(res, failWith, {
        error: `${name} failed this request on purpose (chaos: ${describeChaos(chaos.settings)})`,
      });
    }
    if (req.method === "GET") return sendJson(res, 200, chaosReply(chaos.settings));
    if (req.method !== "POST")
      return sendJson(res, 405, { error: "POST /chaos?fail=0.3&status=503&delay=200, or GET" });
    const params = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
    try {
      for (const [k, v] of await bodyParams(req)) params.set(k, v);
      chaos.settings = parseChaos(params);
    } catch (err) {
      if (!(err instanceof ChaosError)) throw err;
      return sendJson(res, 400, { error: err.message });
    }
    log(`${name}: chaos ${describeChaos(chaos.settings)}`);
    return sendJson(res, 200, chaosReply(chaos.settings));
  };
}

function chaosReply(s: ChaosSettings): unknown {
  return { chaos: { fail: s.fail, status: s.status, delay: s.delayMs }, description: describeChaos(s) };
}

/** A small request body as settings: a JSON object or a form (`fail=0.3&status=503`). */
async function bodyParams(req: IncomingMessage): Promise<[string, string][]> {
  let body = "";
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 4096) throw new ChaosError("the chaos settings are too long");
  }
  body = body.trim();
  if (!body) return [];
  if (!body.startsWith("{")) return [...new URLSearchParams(body)];
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new ChaosError("the body is not valid JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new ChaosError('the body must be a JSON object, e.g. {"fail": 0.3, "status": 503}');
  return Object.entries(json).map(([k, v]) => [k, v === true || v === null ? "" : String(v)]);
}
