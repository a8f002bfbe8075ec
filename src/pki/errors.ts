// The PKI error catalogue. Codes are stable snake_case strings: callers (the control-plane API, the
// proxy) match on `code` and may put it on the wire; messages are for humans and never carry secrets
// (tokens, private keys).

export type PkiErrorCode =
  /** A SPIFFE ID (or one of its parts) is not in weft's `spiffe://<td>/ns/<ns>/sa/<sa>` form. */
  | "spiffe_id_invalid"
  /** The SPIFFE ID belongs to a trust domain this CA does not serve. */
  | "trust_domain_mismatch"
  /** The CSR could not be parsed, or its self-signature does not verify. */
  | "csr_invalid"
  /** The CSR's key is not ECDSA P-256. */
  | "csr_key_unsupported"
  /** The CSR asks for an identity other than the one the caller is entitled to. */
  | "csr_identity_mismatch"
  /** A requested certificate lifetime is not a positive number of seconds. */
  | "ttl_invalid"
  /** CA material on disk (or supplied by the user) is missing, unreadable or inconsistent. */
  | "ca_invalid"
  /** A join token is malformed, badly signed, from another issuer, or not yet valid. */
  | "token_invalid"
  /** A join token's `exp` has passed. */
  | "token_expired"
  /** Token signing key on disk is unreadable or of the wrong type. */
  | "token_key_invalid";

export class PkiError extends Error {
  readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PkiError";
    this.code = code;
  }
}

export function isPkiError(err: unknown, code?: PkiErrorCode): err is PkiError {
  return err instanceof PkiError && (code === undefined || err.code === code);
}
