// One-off HTTP requests for the harness: readiness polling and the single-request check each case
// must pass before it is measured (so a misrouted 404/503 can't pass for a fast proxy).

import { request } from "node:http";
import type { Child } from "./proc.ts";
import { sleep } from "./proc.ts";

export interface HttpResult {
  status: number;
  body: string;
}

/** GET `url` on a fresh connection (no keep-alive), with a 2 s timeout. */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false, timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Polls `url` every `intervalMs` until it answers 200; resolves with the ms elapsed since `since`
 * (default: the call). Fails after `timeoutMs`, or at once if `child` exits.
 */
export async function waitForHttp(
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
  child?: Child,
  opts: { since?: number; intervalMs?: number } = {},
): Promise<number> {
  const start = opts.since ?? performance.now();
  let exited = false;
  child?.exited.then(() => (exited = true));
  let last = "no answer";
  while (performance.now() - start < timeoutMs) {
    if (exited)
      throw new Error(`${child!.name} exited while waiting for ${url}:\n${child!.output().slice(-2000)}`);
    try {
      const res = await httpGet(url, headers);
      if (res.status === 200) return performance.now() - start;
      last = `HTTP ${res.status}: ${res.body.slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(opts.intervalMs ?? 20);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms (last: ${last})`);
}

/** Sends one request and insists on 200 with exactly `body`; retries for up to `timeoutMs`. */
export async function expectBody(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<void> {
  const start = performance.now();
  let last: string;
  while (true) {
    try {
      const res = await httpGet(url, headers);
      if (res.status === 200 && res.body === body) return;
      last = `HTTP ${res.status}, body ${JSON.stringify(res.body.slice(0, 200))}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (performance.now() - start > timeoutMs) break;
    await sleep(100);
  }
  throw new Error(`GET ${url} (${JSON.stringify(headers)}) did not return the upstream's body: ${last}`);
}
