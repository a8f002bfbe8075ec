// The CA's node:crypto signing path (workload-cert.ts): hostile CSR bytes never get past the reader
// as anything but a PkiError; leaves signed with P-256, P-384 and RSA CA keys verify under their CA
// and carry the profile.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, generateKeyPairSync, webcrypto } from "node:crypto";
import { generateWorkloadKeyAndCsr } from "./csr.ts";
import { toPem } from "./der.ts";
import { isPkiError } from "./errors.ts";
import { LeafSigner, readWorkloadCsr } from "./workload-cert.ts";
import { x509 } from "./x509.ts";

const WEB = "spiffe://weft.local/ns/default/sa/web";

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
}
const csrPem = (der: Buffer) => toPem("CERTIFICATE REQUEST", der);

test("a well-formed CSR yields its key and its one URI SAN", async () => {
  const { csrPem: pem } = await generateWorkloadKeyAndCsr(WEB);
  const csr = readWorkloadCsr(pem);
  assert.deepEqual(csr.uris, [WEB]);
  assert.equal(csr.spki[0], 0x30);
});

test("every truncation, length lie and byte flip of a CSR is a PkiError, never a crash", async () => {
  const { csrPem: pem } = await generateWorkloadKeyAndCsr(WEB);
  const der = derOf(pem);
  const outcomes = new Map<string, number>();
  const attempt = (bytes: Buffer) => {
    try {
      readWorkloadCsr(csrPem(bytes));
      outcomes.set("accepted", (outcomes.get("accepted") ?? 0) + 1);
    } catch (e) {
      assert.ok(isPkiError(e), `not a PkiError: ${(e as Error)?.stack}`);
      outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
    }
  };
  for (let n = 0; n < der.length; n++) attempt(der.subarray(0, n));
  for (let i = 0; i < der.length; i++)
    for (const v of [0x00, 0x80, 0x84, 0xff]) {
      if (der[i] === v) continue;
      const b = Buffer.from(der);
      b[i] = v;
      attempt(b);
    }
  attempt(Buffer.concat([der, Buffer.from([0])])); // a trailing byte
  // Lengths that claim more than the buffer, and the indefinite form DER forbids.
  const lying = Buffer.from(der);
  lying[1] = 0x84;
  attempt(lying);
  // Every byte is covered by the signature or the structure around it: nothing changed may pass.
  assert.equal(outcomes.get("accepted"), undefined, JSON.stringify([...outcomes]));
  assert.ok((outcomes.get("csr_invalid") ?? 0) > der.length, JSON.stringify([...outcomes]));
  for (const junk of [
    undefined,
    42,
    "",
    "x".repeat(20_000),
    " ".repeat(16_000), // and a PEM start with no end, both under the size cap
    `-----BEGIN CERTIFICATE REQUEST-----${" \n".repeat(7_000)}`,
    "-----BEGIN CERTIFICATE REQUEST-----\n!!\n-----END CERTIFICATE REQUEST-----",
  ])
    assert.throws(
      () => readWorkloadCsr(junk),
      (e) => isPkiError(e, "csr_invalid"),
    );
});

for (const [name, opts, alg] of [
  [
    "EC P-256",
    { type: "ec", namedCurve: "prime256v1" },
    { name: "ECDSA", hash: "SHA-256", namedCurve: "P-256" },
  ],
  [
    "EC P-384",
    { type: "ec", namedCurve: "secp384r1" },
    { name: "ECDSA", hash: "SHA-384", namedCurve: "P-384" },
  ],
  ["RSA 2048", { type: "rsa", modulusLength: 2048 }, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }],
] as const) {
  test(`a ${name} CA key signs leaves that verify and carry the profile`, async () => {
    const { privateKey, publicKey } =
      opts.type === "rsa"
        ? generateKeyPairSync("rsa", { modulusLength: opts.modulusLength })
        : generateKeyPairSync("ec", { namedCurve: opts.namedCurve });
    const keys = {
      privateKey: privateKey.toCryptoKey(alg, true, ["sign"]),
      publicKey: publicKey.toCryptoKey(alg, true, ["verify"]),
    };
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01",
      name: "CN=test CA",
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      keys: keys as unknown as webcrypto.CryptoKeyPair,
      signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const signer = new LeafSigner(new Uint8Array(caCert.rawData), privateKey);
    const csr = readWorkloadCsr((await generateWorkloadKeyAndCsr(WEB)).csrPem);
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
    const notAfter = new Date(Date.UTC(2051, 0, 1)); // past 2049: GeneralizedTime
    const pem = signer.issue({ serialHex: "7f0102", notBefore, notAfter, spki: csr.spki, spiffeId: WEB });
    const leaf = new X509Certificate(pem);
    const root = new X509Certificate(caCert.toString("pem"));
    assert.equal(leaf.checkIssued(root), true);
    assert.equal(leaf.verify(root.publicKey), true);
    assert.equal(leaf.subjectAltName, `URI:${WEB}`);
    assert.equal(leaf.serialNumber.toLowerCase(), "7f0102");
    assert.equal(leaf.validFromDate.getTime(), notBefore.getTime());
    assert.equal(leaf.validToDate.getTime(), notAfter.getTime());
    const parsed = new x509.X509Certificate(pem);
    const aki = parsed.getExtension(x509.AuthorityKeyIdentifierExtension);
    const ski = parsed.getExtension(x509.SubjectKeyIdentifierExtension);
    assert.ok(aki?.keyId && ski?.keyId && aki.keyId !== ski.keyId);
    assert.equal(parsed.subject, "O=weft");
  });
}
