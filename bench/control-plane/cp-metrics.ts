// Reads the control plane's own metrics (GET /metrics on its config API, with the admin credential;
// src/control-plane/metrics.ts) for the simulator: its heap as V8 counts it, which /proc cannot tell,
// and how many entries its caches hold.

import { request } from "node:https";

export interface AdminTarget {
  server: string;
  ca: string;
  token: string;
}

/** Every sample of one scrape: `name{labels}` → value. */
export type Samples = Map<string, number>;

export function scrapeControlPlane(admin: AdminTarget, timeoutMs = 10_000): Promise<Samples> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL("/metrics", admin.server),
      { ca: admin.ca, timeout: timeoutMs, headers: { authorization: `Bearer ${admin.token}` } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("error", reject);
        res.on("end", () => {
          if (res.statusCode !== 200)
            return reject(new Error(`GET /metrics: ${res.statusCode} ${body.slice(0, 200)}`));
          const out: Samples = new Map();
          for (const line of body.split("\n")) {
            if (line === "" || line.startsWith("#")) continue;
            const i = line.lastIndexOf(" ");
            out.set(line.slice(0, i), Number(line.slice(i + 1)));
          }
          resolve(out);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`GET /metrics: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** The sum of every cache entry the control plane reports (weft_cp_cache_entries). */
export function cacheEntries(s: Samples): number {
  let n = 0;
  for (const [k, v] of s) if (k.startsWith("weft_cp_cache_entries{")) n += v;
  return n;
}
