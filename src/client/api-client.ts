// HTTPS calls from a proxy (or the CLI) to the control plane's config API.

import { request } from "node:https";
import { logSafe } from "../model/log-safe.ts";

export interface ApiTarget {
  server: string;
  ca: string;
  /** Bearer credential: admin token or join token. */
  token?: string;
  /** Client certificate (a proxy renewing with its current mesh identity). */
  cert?: { keyPem: string; certChainPem: string };
}

export class ApiCallError extends Error {
  readonly status: number;
  readonly code: string;
  readonly body: Record<string, unknown>;
  /** How long the server asked the caller to stay away (its Retry-After), in ms. */
  readonly retryAfterMs?: number;
  constructor(
    status: number,
    code: string,
    message: string,
    body: Record<string, unknown>,
    retryAfterMs?: number,
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
  }
}

export function callApi<T>(
  target: ApiTarget,
  method: string,
  path: string,
  body?: string | object,
  timeoutMs = 10_000,
): Promise<T> {
  const url = new URL(path, target.server);
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: target.ca,
        key: target.cert?.keyPem,
        cert: target.cert?.certChainPem,
        timeout: timeoutMs,
        headers: {
          ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
          ...(payload !== undefined
            ? { "content-type": typeof body === "string" ? "application/yaml" : "application/json" }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: Record<string, unknown>;
          try {
            json = text ? JSON.parse(text) : {};
          } catch {
            return reject(
              new ApiCallError(
                res.statusCode ?? 0,
                "bad_response",
                `control plane answered ${res.statusCode} with non-JSON`,
                {},
              ),
            );
          }
          if ((res.statusCode ?? 500) >= 400) {
            const e = (json.error ?? {}) as { code?: string; message?: string };
            return reject(
              new ApiCallError(
                res.statusCode ?? 500,
                e.code ?? "error",
                // The server's words reach a terminal: one line, escapes visible.
                e.message === undefined ? `HTTP ${res.statusCode}` : logSafe(e.message),
                json.error as Record<string, unknown>,
                retryAfterMs(res.headers["retry-after"]),
              ),
            );
          }
          resolve(json as T);
        });
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`control plane at ${target.server} did not answer within ${timeoutMs} ms`)),
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNREFUSED")
        reject(
          new Error(
            `cannot reach the control plane at ${target.server} (connection refused); is \`weft control-plane\` running?`,
          ),
        );
      else reject(err);
    });
    req.end(payload);
  });
}

/** Retry-After in whole seconds (what the control plane sends), as ms; undefined if absent or not a number. */
function retryAfterMs(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,6}$/.test(value.trim()) ? Number(value.trim()) * 1000 : undefined;
}
