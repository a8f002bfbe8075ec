import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { x509 } from "./x509.ts";
import { generateWorkloadKeyAndCsr } from "./csr.ts";
import { isPkiError } from "./errors.ts";

test("generateWorkloadKeyAndCsr: P-256 PKCS#8 key, self-signed CSR carrying the SPIFFE ID", async () => {
  const id = "spiffe://weft.local/ns/default/sa/web";
  const { keyPem, csrPem } = await generateWorkloadKeyAndCsr(id);
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const key = createPrivateKey(keyPem);
  assert.equal(key.asymmetricKeyType, "ec");
  assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");

  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  assert.equal(await csr.verify(), true);
  assert.equal(csr.subject, "O=weft");
  const san = csr.getExtension("2.5.29.17");
  assert.ok(san instanceof x509.SubjectAlternativeNameExtension);
  assert.deepEqual(san.names.toJSON(), [{ type: "url", value: id }]);
});

test("generateWorkloadKeyAndCsr refuses a malformed SPIFFE ID", async () => {
  await assert.rejects(generateWorkloadKeyAndCsr("spiffe://weft.local/web"), (e) =>
    isPkiError(e, "spiffe_id_invalid"),
  );
});

test("each call makes a new key", async () => {
  const id = "spiffe://weft.local/ns/default/sa/web";
  const a = await generateWorkloadKeyAndCsr(id);
  const b = await generateWorkloadKeyAndCsr(id);
  assert.notEqual(a.keyPem, b.keyPem);
});
