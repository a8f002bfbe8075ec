// Workload side of issuance: the proxy makes its own key and asks the CA to certify it with a CSR,
// so the private key never leaves the proxy. Written with node:crypto and a few lines of DER.

import { generateKeyPairSync, sign } from "node:crypto";
import { bitString, integer, octetString, oid, sequence, set, tlv, toPem, utf8String } from "./der.ts";
import { PkiError } from "./errors.ts";
import { parseSpiffeId } from "./spiffe.ts";

export interface WorkloadKeyAndCsr {
  /** PKCS#8 PEM private key, usable as `key` for node:tls. Keep it in memory; never send it. */
  keyPem: string;
  /** PKCS#10 PEM with the SPIFFE ID as its only SAN (URI), requested via extensionRequest. */
  csrPem: string;
}

const OID_ORGANIZATION = "2.5.4.10";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

/** A fresh ECDSA P-256 key and a CSR for `spiffeId` signed by it. */
export async function generateWorkloadKeyAndCsr(spiffeId: string): Promise<WorkloadKeyAndCsr> {
  if (!parseSpiffeId(spiffeId)) {
    throw new PkiError("spiffe_id_invalid", `not a weft SPIFFE ID: ${JSON.stringify(spiffeId)}`);
  }
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const subject = sequence(set(sequence(oid(OID_ORGANIZATION), utf8String("weft"))));
  // GeneralNames { uniformResourceIdentifier [6] IMPLICIT IA5String }
  const san = sequence(tlv(0x86, Buffer.from(spiffeId, "ascii")));
  const extensions = sequence(sequence(oid(OID_SUBJECT_ALT_NAME), octetString(san)));
  const attributes = tlv(0xa0, sequence(oid(OID_EXTENSION_REQUEST), set(extensions)));
  const info = sequence(integer(0), subject, publicKey.export({ type: "spki", format: "der" }), attributes);
  const signature = sign("sha256", info, { key: privateKey, dsaEncoding: "der" });
  const csr = sequence(info, sequence(oid(OID_ECDSA_WITH_SHA256)), bitString(signature));
  return {
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    csrPem: toPem("CERTIFICATE REQUEST", csr),
  };
}
