// An app whose behaviour a test changes while it runs: answer with a status, after a delay, fail the
// first N requests, and record what it saw. Used behind real sidecars to exercise retries,
// hedging, outlier detection, mirroring and the rest.

import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after } from "node:test";
import { waitUntil } from "./mesh.ts";

const servers = new Set<Server>();
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface ControlApp {
  name: string;
  port: number;
  seen: Seen[];
  /** Status for every request (default 200). */
  status: number;
  /** Delay before answering (ms). */
  delayMs: number;
  /** Answer this many next requests with `failStatus` (then back to `status`). */
  failNext: number;
  failStatus: number;
  /** Requests being answered right now. */
  inFlight: number;
  reset(): void;
}

export async function startControlApp(name: string): Promise<ControlApp> {
  const app: ControlApp = {
    name,
    port: 0,
    seen: [],
    status: 200,
    delayMs: 0,
    failNext: 0,
    failStatus: 503,
    inFlight: 0,
    reset() {
      this.status = 200;
      this.delayMs = 0;
      this.failNext = 0;
      this.failStatus = 503;
      this.seen.length = 0;
    },
  };
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      app.seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body,
        at: Date.now(),
      });
      app.inFlight++;
      let status = app.status;
      if (app.failNext > 0) {
        app.failNext--;
        status = app.failStatus;
      }
      const answer = () => {
        app.inFlight--;
        if (res.destroyed) return;
        res.writeHead(status, { "content-type": "application/json", "x-app": name });
        res.end(JSON.stringify({ app: name, url: req.url, host: req.headers.host, body }));
      };
      if (app.delayMs > 0) setTimeout(answer, app.delayMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  servers.add(server);
  app.port = (server.address() as AddressInfo).port;
  return app;
}

/** Reads a counter's value from Prometheus text: the sum over series whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** A request through a proxy port (absolute-form URL), with a method and body; fails after 10 s. */
export function send(
  port: number,
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: url,
        method: opts.method ?? "GET",
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: Date.now() - started }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${url}: no answer within 10 s`)));
    req.end(opts.body);
  });
}

/** The app that answered, from a ControlApp's JSON body (undefined for a local reply). */
export function appOf(a: Answer): string | undefined {
  try {
    return (JSON.parse(a.body) as { app?: string }).app;
  } catch {
    return undefined;
  }
}

/** Waits until requests to `url` through `port` have been answered by every one of `apps`. */
export async function waitForApps(port: number, url: string, apps: string[], tries = 4): Promise<void> {
  await waitUntil(
    async () => {
      const seen = new Set<string | undefined>();
      for (let i = 0; i < tries; i++) seen.add(appOf(await send(port, url)));
      return apps.every((a) => seen.has(a));
    },
    10_000,
    `${apps.join(" and ")} reachable at ${url}`,
  );
}
