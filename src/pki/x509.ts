// The one place that loads @peculiar/x509. v2 still resolves its algorithm registry through tsyringe,
// which needs a Reflect metadata polyfill installed before the library is evaluated; ES modules
// evaluate their imports in order, so the polyfill import must stay first. Everything else in
// src/pki imports the library through this file.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";

x509.cryptoProvider.set(webcrypto as any);

export { x509 };

export const ECDSA_P256: webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
export const ECDSA_SHA256: webcrypto.EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

/** OIDs used when reading certificates and CSRs. */
export const OID = {
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  nameConstraints: "2.5.29.30",
} as const;
