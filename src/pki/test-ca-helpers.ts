// Test helpers: temporary directories and a user-supplied CA (root → intermediate) built without
// going through CertificateAuthority, as an operator's own tooling would.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x509, ECDSA_SHA256 } from "./x509.ts";
import { createRoot } from "./ca-material.ts";
import { generateP256, importSigningKey, pemOf } from "./keys.ts";

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "weft-pki-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes <dir>/user/{root.crt, root.key, int.crt (intermediate + root), int.key}. */
export async function writeUserCa(dir: string, nowMs = Date.now()) {
  const root = await createRoot("corp.example", nowMs);
  const rootCert = new x509.X509Certificate(root.certPem);
  const rootKey = await importSigningKey(root.keyPem, "root");
  const { keys, keyPem } = await generateP256();
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: "01",
    subject: "CN=corp intermediate, O=corp",
    issuer: rootCert.subjectName,
    notBefore: new Date(nowMs - 60_000),
    notAfter: new Date(nowMs + 5 * 365 * 24 * 3600 * 1000),
    publicKey: keys.publicKey,
    signingKey: rootKey.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert.publicKey),
    ],
  });
  const p = (name: string) => join(dir, `user-${name}`);
  await writeFile(p("root.crt"), root.certPem);
  await writeFile(p("root.key"), root.keyPem, { mode: 0o600 });
  await writeFile(p("int.crt"), pemOf(intermediate) + root.certPem);
  await writeFile(p("int.key"), keyPem, { mode: 0o600 });
  return {
    rootCertPem: root.certPem,
    intermediatePem: pemOf(intermediate),
    rootCertFile: p("root.crt"),
    rootKeyFile: p("root.key"),
    intCertFile: p("int.crt"),
    intKeyFile: p("int.key"),
  };
}
