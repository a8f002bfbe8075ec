// Where the CA's certificate and key come from: the user's files (root or intermediate), weft's own
// root in <dir>/ca/, or a freshly generated root written there. Loading checks that the key matches
// the certificate and that the certificate may sign certificates.
import { X509Certificate as NodeX509, randomBytes } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { x509, ECDSA_SHA256 } from "./x509.ts";
import {
  generateP256,
  importSigningKey,
  pemOf,
  keyMatchesCertificate,
  splitPemCertificates,
} from "./keys.ts";
import type { SigningKey } from "./keys.ts";
import { PkiError } from "./errors.ts";
import { writeFileAtomic } from "./fs-atomic.ts";

export interface CaMaterial {
  /** The certificate that signs workload certificates (root or intermediate). */
  cert: x509.X509Certificate;
  signing: SigningKey;
  /** PEM of certificates that go after a leaf in a chain: the issuer and any intermediates above it. */
  intermediatesPem: string;
  /** PEM of the root(s) relying parties should trust. */
  trustBundlePem: string;
}

const ROOT_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;

function isSelfSigned(c: NodeX509): boolean {
  return c.checkIssued(c) && c.verify(c.publicKey);
}

/**
 * Builds CA material from a PEM bundle (signing certificate first, then the chain it was issued
 * under, optionally ending in the root) and its private key. Certificates after the first that are
 * self-signed are treated as trust anchors; if the file has none, the topmost certificate becomes the
 * anchor (callers must then trust an intermediate — see docs/security.md).
 */
export async function loadCaMaterial(certPem: string, keyPem: string, source: string): Promise<CaMaterial> {
  const pems = splitPemCertificates(certPem);
  if (pems.length === 0) throw new PkiError("ca_invalid", `${source}: no PEM certificate found`);
  let nodeCerts: NodeX509[];
  try {
    nodeCerts = pems.map((p) => new NodeX509(p));
  } catch (cause) {
    throw new PkiError("ca_invalid", `${source}: unreadable certificate`, { cause });
  }
  const [signer] = nodeCerts;
  if (!signer.ca) throw new PkiError("ca_invalid", `${source}: certificate is not a CA (basicConstraints)`);
  const signing = await importSigningKey(keyPem, `${source} key`);
  if (!keyMatchesCertificate(signing.keyObject, signer.publicKey)) {
    throw new PkiError("ca_invalid", `${source}: private key does not match the CA certificate`);
  }
  for (let i = 0; i + 1 < nodeCerts.length; i++) {
    if (isSelfSigned(nodeCerts[i])) break;
    if (!nodeCerts[i].checkIssued(nodeCerts[i + 1]) || !nodeCerts[i].verify(nodeCerts[i + 1].publicKey)) {
      throw new PkiError(
        "ca_invalid",
        `${source}: certificate ${i + 1} is not issued by certificate ${i + 2}`,
      );
    }
  }
  const roots = pems.filter((_, i) => isSelfSigned(nodeCerts[i]));
  const intermediates = pems.filter((_, i) => !isSelfSigned(nodeCerts[i]));
  return {
    cert: new x509.X509Certificate(pems[0]),
    signing,
    intermediatesPem: intermediates.join(""),
    trustBundlePem: roots.length > 0 ? roots.join("") : pems[pems.length - 1],
  };
}

/** A self-signed ECDSA P-256 root for `trustDomain`, valid 10 years. */
export async function createRoot(
  trustDomain: string,
  nowMs: number,
): Promise<{ certPem: string; keyPem: string }> {
  const { keys, keyPem } = await generateP256();
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x01;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString("hex"),
    name: [{ CN: ["weft root CA"] }, { O: ["weft"] }, { OU: [trustDomain] }],
    notBefore: new Date(nowMs - 60_000),
    notAfter: new Date(nowMs + ROOT_LIFETIME_MS),
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: pemOf(cert), keyPem };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new PkiError("ca_invalid", `cannot read ${path}`, { cause: err });
  }
}

/**
 * weft's own root: loaded from <dir>/ca/root.{crt,key}, or generated and written there. The key is
 * written first (0600), then the certificate, so a crash in between only leaves a key that the next
 * start replaces. A certificate without its key is an error, not a reason to silently re-root.
 */
export async function loadOrCreateOwnRoot(
  dir: string,
  trustDomain: string,
  nowMs: number,
): Promise<CaMaterial> {
  const caDir = join(dir, "ca");
  const certPath = join(caDir, "root.crt");
  const keyPath = join(caDir, "root.key");
  const certPem = await readIfExists(certPath);
  const keyPem = await readIfExists(keyPath);
  if (certPem !== undefined && keyPem !== undefined) return loadCaMaterial(certPem, keyPem, certPath);
  if (certPem !== undefined) throw new PkiError("ca_invalid", `${certPath} exists but ${keyPath} is missing`);
  await mkdir(caDir, { recursive: true, mode: 0o700 });
  const root = await createRoot(trustDomain, nowMs);
  await writeFileAtomic(keyPath, root.keyPem, 0o600);
  await writeFileAtomic(certPath, root.certPem, 0o644);
  return loadCaMaterial(root.certPem, root.keyPem, certPath);
}
