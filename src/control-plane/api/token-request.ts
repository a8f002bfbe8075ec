// POST /api/v1/tokens: what the body may ask for. Names follow the model's rules for a Service's name
// and namespace (DNS-1123 labels), so a token can only be made for an identity a resource could
// name; the lifetime is a whole number of seconds within the issuer's bounds. Each problem is a 422
// that names the field.

import { DEFAULT_NAMESPACE } from "../../model/resources.ts";
import { dnsLabel } from "../../model/names.ts";
import { MAX_TOKEN_TTL_SECONDS, MIN_TOKEN_TTL_SECONDS } from "../../pki/tokens.ts";
import { ApiError } from "./http.ts";

export interface TokenRequest {
  service: string;
  namespace: string;
  ttlSeconds?: number;
}

const FIELDS = new Set(["service", "namespace", "ttlSeconds"]);

function invalid(field: string, problem: string, got: unknown): ApiError {
  const shown = JSON.stringify(got) ?? String(got);
  return new ApiError(
    422,
    "invalid",
    `field "${field}" ${problem} (got ${shown.length > 80 ? `${shown.slice(0, 80)}…` : shown})`,
    { field },
  );
}

function name(body: Record<string, unknown>, field: string, fallback?: string): string {
  const v = body[field] ?? fallback;
  if (typeof v !== "string") throw invalid(field, "must be a string", v);
  const problem = dnsLabel(v);
  if (problem !== undefined) throw invalid(field, problem, v);
  return v;
}

export function parseTokenRequest(body: unknown): TokenRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw new ApiError(
      422,
      "invalid",
      'expected a JSON object {"service": ..., "namespace": ..., "ttlSeconds": ...}',
    );
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).find((k) => !FIELDS.has(k));
  if (unknown !== undefined)
    throw invalid(unknown, "is not a field of a token request (service, namespace, ttlSeconds)", b[unknown]);
  const service = name(b, "service");
  const namespace = name(b, "namespace", DEFAULT_NAMESPACE);
  const ttl = b.ttlSeconds;
  if (
    ttl !== undefined &&
    (!Number.isInteger(ttl) ||
      (ttl as number) < MIN_TOKEN_TTL_SECONDS ||
      (ttl as number) > MAX_TOKEN_TTL_SECONDS)
  )
    throw invalid(
      "ttlSeconds",
      `must be a whole number of seconds from ${MIN_TOKEN_TTL_SECONDS} to ${MAX_TOKEN_TTL_SECONDS} (365 days)`,
      ttl,
    );
  return { service, namespace, ttlSeconds: ttl as number | undefined };
}
