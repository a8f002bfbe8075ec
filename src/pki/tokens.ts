// Join tokens: JWTs (ES256) signed by the control plane's token key — a key separate from the CA's,
// so a leaked token key cannot mint certificates and vice versa. A token names one service in one
// namespace; the control plane issues a certificate only for that identity (see ca.ts).
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { signEs256, verifyEs256 } from "./jws.ts";
import { validSegment } from "./spiffe.ts";
import { writeFileAtomic } from "./fs-atomic.ts";
import { PkiError } from "./errors.ts";

export const DEFAULT_TOKEN_TTL_SECONDS = 30 * 24 * 3600;
/** Bounds of a token's lifetime: at least a minute, at most a year. */
export const MIN_TOKEN_TTL_SECONDS = 60;
export const MAX_TOKEN_TTL_SECONDS = 365 * 24 * 3600;
export const DEFAULT_TOKEN_ISSUER = "weft-control-plane";
const LEEWAY_SECONDS = 60;
const JTI = /^[A-Za-z0-9_-]{1,128}$/;

export interface TokenIdentity {
  service: string;
  namespace: string;
  /** Expiry, epoch seconds. */
  exp: number;
  /** Token id, for revocation lists and audit logs. */
  jti: string;
}

/** A short, non-reversible tag for a token, for logs and audit records (never log the token). */
export function tokenFingerprint(token: string): string {
  return createHash("sha256").update(token).digest("hex").slice(0, 12);
}

function subject(namespace: string, service: string): string {
  return `weft:service:${namespace}:${service}`;
}

function invalid(reason: string): PkiError {
  return new PkiError("token_invalid", `join token rejected: ${reason}`);
}

/** Verified tokens remembered (a few hundred bytes each). */
const MAX_VERIFIED_TOKENS = 4096;

export class TokenIssuer {
  readonly issuer: string;
  /** Key id placed in token headers: a fingerprint of the public key. */
  readonly keyId: string;
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #now: () => number;
  /**
   * Tokens whose signature and claims already checked out, until they expire: a starting proxy
   * presents its token on every call (identity, CSR, each retry during a storm), and verifying an
   * ES256 signature each time is a large part of what a join costs the control plane. A token valid
   * once stays valid until its `exp` (iat and nbf only become more true), and tokens are revoked only
   * by a new key — a new issuer, hence an empty cache. Bounded; the oldest entries go first.
   */
  readonly #verified = new Map<string, TokenIdentity>();

  private constructor(privateKey: KeyObject, issuer: string, now: () => number) {
    this.#privateKey = privateKey;
    this.#publicKey = createPublicKey(privateKey);
    const spki = this.#publicKey.export({ format: "der", type: "spki" });
    this.keyId = createHash("sha256").update(spki).digest("base64url").slice(0, 16);
    this.issuer = issuer;
    this.#now = now;
  }

  /** Loads <dir>/tokens/signing.key, or generates an ECDSA P-256 key there (mode 0600). */
  static async loadOrCreate(
    dir: string,
    opts: { now?: () => number; issuer?: string } = {},
  ): Promise<TokenIssuer> {
    const keyPath = join(dir, "tokens", "signing.key");
    let pem: string | undefined;
    try {
      pem = await readFile(keyPath, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new PkiError("token_key_invalid", `cannot read ${keyPath}`, { cause: err });
      }
    }
    let key: KeyObject;
    if (pem === undefined) {
      key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
      await mkdir(join(dir, "tokens"), { recursive: true, mode: 0o700 });
      await writeFileAtomic(keyPath, key.export({ format: "pem", type: "pkcs8" }) as string, 0o600);
    } else {
      try {
        key = createPrivateKey(pem);
      } catch (cause) {
        throw new PkiError("token_key_invalid", `${keyPath} is not a readable private key`, { cause });
      }
      if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
        throw new PkiError("token_key_invalid", `${keyPath} must be an ECDSA P-256 key`);
      }
    }
    return new TokenIssuer(key, opts.issuer ?? DEFAULT_TOKEN_ISSUER, opts.now ?? Date.now);
  }

  /** A join token for one service identity. */
  create(opts: { service: string; namespace: string; ttlSeconds?: number; id?: string }): string {
    const { service, namespace } = opts;
    if (!validSegment(service)) throw invalid("service name is not a valid identity segment");
    if (!validSegment(namespace)) throw invalid("namespace is not a valid identity segment");
    const ttl = opts.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl < MIN_TOKEN_TTL_SECONDS || ttl > MAX_TOKEN_TTL_SECONDS)
      throw invalid(
        `ttlSeconds must be a whole number from ${MIN_TOKEN_TTL_SECONDS} to ${MAX_TOKEN_TTL_SECONDS}`,
      );
    const jti = opts.id ?? randomBytes(16).toString("base64url");
    if (!JTI.test(jti)) throw invalid("id must be 1-128 base64url characters");
    const iat = Math.floor(this.#now() / 1000);
    const payload = {
      iss: this.issuer,
      sub: subject(namespace, service),
      weft: { service, namespace },
      iat,
      exp: iat + ttl,
      jti,
    };
    return signEs256(payload, this.#privateKey, this.keyId);
  }

  /**
   * Checks signature, issuer and validity period, and returns the identity the token is bound to.
   * Callers must still compare that identity with what the presenter asks for.
   */
  verify(token: string): TokenIdentity {
    const known = this.#verified.get(token);
    if (known) {
      if (this.#now() / 1000 < known.exp) return { ...known };
      this.#verified.delete(token);
    }
    const identity = this.#verifyAfresh(token);
    if (this.#verified.size >= MAX_VERIFIED_TOKENS)
      this.#verified.delete(this.#verified.keys().next().value as string);
    this.#verified.set(token, identity);
    return { ...identity };
  }

  #verifyAfresh(token: string): TokenIdentity {
    const r = verifyEs256(token, this.#publicKey);
    if (!r.ok) throw invalid(r.reason);
    const { header, payload: c } = r;
    if (header.kid !== undefined && header.kid !== this.keyId) throw invalid("unknown signing key");
    if (c.iss !== this.issuer) throw invalid("wrong issuer");
    const w = c.weft as Record<string, unknown> | undefined;
    if (!w || typeof w !== "object" || typeof w.service !== "string" || typeof w.namespace !== "string") {
      throw invalid("missing identity claims");
    }
    if (!validSegment(w.service) || !validSegment(w.namespace)) throw invalid("malformed identity claims");
    if (c.sub !== subject(w.namespace, w.service)) throw invalid("subject does not match identity claims");
    if (typeof c.jti !== "string" || !JTI.test(c.jti)) throw invalid("missing jti");
    if (!Number.isInteger(c.exp) || !Number.isInteger(c.iat)) throw invalid("missing exp or iat");
    const nowSec = this.#now() / 1000;
    const exp = c.exp as number;
    if ((c.iat as number) > nowSec + LEEWAY_SECONDS) throw invalid("issued in the future");
    if (c.nbf !== undefined && (!Number.isInteger(c.nbf) || (c.nbf as number) > nowSec + LEEWAY_SECONDS)) {
      throw invalid("not yet valid");
    }
    if (nowSec >= exp) throw new PkiError("token_expired", "join token expired");
    return { service: w.service, namespace: w.namespace, exp, jti: c.jti };
  }
}
