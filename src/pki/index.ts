// Public surface of the mesh PKI. The proxy needs csr.ts and spiffe.ts; the control plane the rest.
export { PkiError, isPkiError, type PkiErrorCode } from "./errors.ts";
export { spiffeId, parseSpiffeId, peerSpiffeId, type SpiffeParts } from "./spiffe.ts";
export { generateWorkloadKeyAndCsr, type WorkloadKeyAndCsr } from "./csr.ts";
export {
  CertificateAuthority,
  DEFAULT_WORKLOAD_TTL_SECONDS,
  type CaOptions,
  type IssuedCertificate,
} from "./ca.ts";
export {
  TokenIssuer,
  tokenFingerprint,
  DEFAULT_TOKEN_TTL_SECONDS,
  DEFAULT_TOKEN_ISSUER,
  type TokenIdentity,
} from "./tokens.ts";
