// A test app (the service behind a sidecar): records what it received and answers with a handler.

import http from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface TestApp {
  port: number;
  server: http.Server;
  /** Every request the app finished reading. */
  seen: SeenRequest[];
  /** Every request whose headers arrived (including ones that were later aborted). */
  started: http.IncomingMessage[];
  close(): Promise<void>;
}

export type AppHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

/** Default: 200 with the app's name and the request's path. A `stream` handler gets the request unread. */
export async function startApp(
  name: string,
  handler?: AppHandler,
  opts: { stream?: (req: http.IncomingMessage, res: http.ServerResponse) => void } = {},
): Promise<TestApp> {
  const seen: SeenRequest[] = [];
  const started: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    started.push(req);
    if (opts.stream) return opts.stream(req, res);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      });
      if (handler) return handler(req, res, body);
      res.setHeader("content-type", "text/plain");
      res.end(`${name} ${req.method} ${req.url}`);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    server,
    seen,
    started,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, "close").catch(() => {});
    },
  };
}
