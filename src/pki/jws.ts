// Compact JWS (RFC 7515) with exactly one algorithm, ES256, over node:crypto. Deliberately not a
// general JOSE library: the header's `alg` must be "ES256" (so `none` and HMAC-with-public-key
// confusions are impossible), and every part must be canonical base64url.
import { sign, verify, type KeyObject } from "node:crypto";

const B64URL = /^[A-Za-z0-9_-]*$/;
export const MAX_JWS_LENGTH = 8192;

export function b64urlJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

function decodePart(part: string): Buffer | undefined {
  if (!B64URL.test(part) || part.length % 4 === 1) return undefined;
  const buf = Buffer.from(part, "base64url");
  // Reject non-canonical encodings (stray trailing bits), so one token has one spelling.
  return buf.toString("base64url") === part ? buf : undefined;
}

function parseJsonObject(buf: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(buf.toString("utf8"));
    return v !== null && typeof v === "object" && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Signs `payload` as a compact JWS with an ES256 (P-256) private key. */
export function signEs256(payload: Record<string, unknown>, key: KeyObject, kid?: string): string {
  const header = kid === undefined ? { alg: "ES256", typ: "JWT" } : { alg: "ES256", typ: "JWT", kid };
  const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  const sig = sign("sha256", Buffer.from(input, "ascii"), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}

export type JwsResult =
  | { ok: true; header: Record<string, unknown>; payload: Record<string, unknown> }
  | { ok: false; reason: string };

/**
 * Verifies a compact ES256 JWS and returns its header and payload. Failure reasons describe the
 * defect, never the token's content.
 */
export function verifyEs256(token: string, publicKey: KeyObject): JwsResult {
  if (typeof token !== "string" || token.length === 0 || token.length > MAX_JWS_LENGTH) {
    return { ok: false, reason: "missing or oversized" };
  }
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, reason: "not a compact JWS" };
  const [h, p, s] = parts;
  const headerBuf = decodePart(h);
  const payloadBuf = decodePart(p);
  const sig = decodePart(s);
  if (!headerBuf || !payloadBuf || !sig) return { ok: false, reason: "bad base64url" };
  const header = parseJsonObject(headerBuf);
  if (!header) return { ok: false, reason: "bad header" };
  if (header.alg !== "ES256") return { ok: false, reason: "unsupported alg" };
  if (header.crit !== undefined) return { ok: false, reason: "unsupported crit header" };
  if (header.typ !== undefined && header.typ !== "JWT") return { ok: false, reason: "unexpected typ" };
  if (sig.length !== 64) return { ok: false, reason: "bad signature" };
  const good = verify(
    "sha256",
    Buffer.from(`${h}.${p}`, "ascii"),
    { key: publicKey, dsaEncoding: "ieee-p1363" },
    sig,
  );
  if (!good) return { ok: false, reason: "bad signature" };
  const payload = parseJsonObject(payloadBuf);
  if (!payload) return { ok: false, reason: "bad payload" };
  return { ok: true, header, payload };
}
