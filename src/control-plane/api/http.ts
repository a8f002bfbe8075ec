// Small helpers for the control plane's JSON-over-HTTPS APIs.

import type { IncomingMessage, ServerResponse } from "node:http";

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

const MAX_BODY = 8 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ApiError(413, "body_too_large", `request body exceeds ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function readJson<T>(req: IncomingMessage): Promise<T> {
  const text = await readBody(req);
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new ApiError(400, "bad_json", `request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + "\n";
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown): void {
  if (err instanceof ApiError) {
    sendJson(res, err.status, { error: { code: err.code, message: err.message, ...err.details } });
  } else {
    console.error("weft control-plane: internal error:", err);
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
