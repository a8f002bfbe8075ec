// Workload side of issuance: the proxy makes its own key and asks the CA to certify it with a CSR,
// so the private key never leaves the proxy.
import { x509, ECDSA_SHA256 } from "./x509.ts";
import { generateP256, pemOf } from "./keys.ts";
import { parseSpiffeId } from "./spiffe.ts";
import { PkiError } from "./errors.ts";

export interface WorkloadKeyAndCsr {
  /** PKCS#8 PEM private key, usable as `key` for node:tls. Keep it in memory; never send it. */
  keyPem: string;
  /** PKCS#10 PEM with the SPIFFE ID as its only SAN (URI), requested via extensionRequest. */
  csrPem: string;
}

/** A fresh ECDSA P-256 key and a CSR for `spiffeId` signed by it. */
export async function generateWorkloadKeyAndCsr(spiffeId: string): Promise<WorkloadKeyAndCsr> {
  if (!parseSpiffeId(spiffeId)) {
    throw new PkiError("spiffe_id_invalid", `not a weft SPIFFE ID: ${JSON.stringify(spiffeId)}`);
  }
  const { keys, keyPem } = await generateP256();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "O=weft",
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }])],
  });
  return { keyPem, csrPem: pemOf(csr) };
}
