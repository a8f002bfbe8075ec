// Small helpers for the control plane's JSON-over-HTTPS APIs: the error type every route throws, JSON
// parsing with a nesting limit, and the one writer of answers (no stack trace ever reaches a client).

import type { ServerResponse } from "node:http";
import { logSafe } from "../../model/log-safe.ts";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details?: Record<string, unknown>;
  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Deepest nesting of arrays/objects any JSON body of this API needs (apply's is 3). */
export const MAX_JSON_DEPTH = 32;

export function parseJson<T>(text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new ApiError(400, "bad_json", `request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: string[] = []): void {
  const text = JSON.stringify(body, null, 2) + "\n";
  // A request whose body was not read to the end is answered and its connection closed: reading
  // (or discarding) the rest is exactly what the caller may want us to do.
  const close = res.req?.complete === false ? ["connection", "close"] : [];
  res.writeHead(status, [
    "content-type",
    "application/json",
    "content-length",
    String(Buffer.byteLength(text)),
    ...close,
    ...headers,
  ]);
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent || res.destroyed) {
    // Too late for an answer (or nobody left to read it): end the exchange.
    res.destroy();
    return;
  }
  if (err instanceof ApiError) {
    const retry = err.status === 503 ? ["retry-after", String(err.details?.retryAfterSeconds ?? 1)] : [];
    sendJson(res, err.status, { error: { code: err.code, message: err.message, ...err.details } }, retry);
  } else {
    console.error(`weft control-plane: internal error: ${logSafe((err as Error)?.stack ?? err, 4096)}`);
    sendJson(res, 500, {
      error: { code: "internal", message: "internal error; see the control plane's log" },
    });
  }
}

export function requireString(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== "string" || v === "")
    throw new ApiError(400, "bad_request", `field "${field}" must be a non-empty string`);
  return v;
}
