// A test client on node:http (it lets tests set Host, unlike fetch): one request, whole response.

import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";

export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TestRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer | Readable;
  agent?: http.Agent | false;
  /** mTLS client options (key, cert, ca, ...) to call a listener directly over TLS. */
  tls?: https.RequestOptions;
}

export function request(port: number, req: TestRequest = {}): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const opts: https.RequestOptions = {
      host: "127.0.0.1",
      port,
      method: req.method ?? "GET",
      path: req.path ?? "/",
      headers: req.headers,
      agent: req.agent ?? false,
      ...req.tls,
    };
    const r = (req.tls ? https : http).request(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
      res.on("error", reject);
    });
    r.on("error", reject);
    const body = req.body;
    if (body === undefined || typeof body === "string" || Buffer.isBuffer(body)) r.end(body);
    else body.pipe(r);
  });
}

/** Sends a request through the outbound listener as an HTTP_PROXY client would (absolute-form). */
export function viaProxy(
  proxyPort: number,
  url: string,
  req: Omit<TestRequest, "path"> = {},
): Promise<TestResponse> {
  return request(proxyPort, { ...req, path: url, headers: { host: new URL(url).host, ...req.headers } });
}
