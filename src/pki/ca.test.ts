import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey, webcrypto } from "node:crypto";
import { readFile, stat, writeFile, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { x509, ECDSA_SHA256 } from "./x509.ts";
import { CertificateAuthority } from "./ca.ts";
import { generateWorkloadKeyAndCsr } from "./csr.ts";
import { peerSpiffeId } from "./spiffe.ts";
import { isPkiError } from "./errors.ts";
import { withTempDir, writeUserCa } from "./test-ca-helpers.ts";

const TD = "weft.local";
const WEB = "spiffe://weft.local/ns/default/sa/web";
const DB = "spiffe://weft.local/ns/default/sa/db";
const T0 = Date.parse("2030-01-01T00:00:00Z");

function assertIssuedBy(certPem: string, bundlePem: string): void {
  const leaf = new X509Certificate(certPem);
  const root = new X509Certificate(bundlePem);
  assert.equal(leaf.checkIssued(root), true);
  assert.equal(leaf.verify(root.publicKey), true);
}

test("issued workload certificate: SPIFFE URI, 24h default lifetime, leaf profile", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD, now: () => T0 });
    const { csrPem } = await generateWorkloadKeyAndCsr(WEB);
    const issued = await ca.signWorkloadCsr(csrPem, { spiffeId: WEB });
    assertIssuedBy(issued.certPem, ca.trustBundlePem);
    assert.equal(issued.chainPem, issued.certPem, "own root: chain is the leaf alone");

    const leaf = new X509Certificate(issued.certPem);
    assert.equal(peerSpiffeId(leaf), WEB);
    assert.equal(leaf.subjectAltName, `URI:${WEB}`);
    assert.equal(leaf.ca, false);
    assert.deepEqual(leaf.keyUsage?.sort(), ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    assert.equal(leaf.validFromDate.getTime(), T0 - 60_000);
    assert.equal(leaf.validToDate.getTime(), T0 + 24 * 3600 * 1000);
    assert.deepEqual(issued.notBefore, leaf.validFromDate);
    assert.deepEqual(issued.notAfter, leaf.validToDate);
    assert.equal(leaf.serialNumber.toLowerCase(), issued.serial);
    assert.equal(issued.serial.length, 32);

    const parsed = new x509.X509Certificate(issued.certPem);
    const ku = parsed.getExtension<x509.KeyUsagesExtension>("2.5.29.15");
    assert.ok(ku?.critical);
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    const bc = parsed.getExtension<x509.BasicConstraintsExtension>("2.5.29.19");
    assert.ok(bc?.critical && !bc.ca);
    assert.ok(parsed.getExtension("2.5.29.14"), "subjectKeyIdentifier");
    assert.ok(parsed.getExtension("2.5.29.35"), "authorityKeyIdentifier");
  });
});

test("ttlSeconds is honoured and serials differ", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD, now: () => T0 });
    const a = await ca.issueWorkloadCertificate(WEB, 3600);
    const b = await ca.issueWorkloadCertificate(WEB, 3600);
    assert.equal(a.notAfter.getTime(), T0 + 3600_000);
    assert.notEqual(a.serial, b.serial);
    await assert.rejects(ca.issueWorkloadCertificate(WEB, 0), (e) => isPkiError(e, "ttl_invalid"));
  });
});

test("a CSR for another identity is refused with csr_identity_mismatch naming both IDs", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const { csrPem } = await generateWorkloadKeyAndCsr(DB);
    await assert.rejects(ca.signWorkloadCsr(csrPem, { spiffeId: WEB }), (e) => {
      assert.ok(isPkiError(e, "csr_identity_mismatch"));
      assert.ok(e.message.includes(WEB) && e.message.includes(DB), e.message);
      return true;
    });
  });
});

test("a CSR with two URI SANs, or none, is refused", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair;
    const make = async (uris: string[]) =>
      (
        await x509.Pkcs10CertificateRequestGenerator.create({
          name: "O=weft",
          keys,
          signingAlgorithm: ECDSA_SHA256,
          extensions: uris.length
            ? [
                new x509.SubjectAlternativeNameExtension(
                  uris.map((value) => ({ type: "url" as const, value })),
                ),
              ]
            : [],
        })
      ).toString("pem");
    for (const uris of [[WEB, DB], [DB, WEB], [WEB, WEB], []]) {
      await assert.rejects(ca.signWorkloadCsr(await make(uris), { spiffeId: WEB }), (e) =>
        isPkiError(e, "csr_identity_mismatch"),
      );
    }
  });
});

test("a tampered or garbage CSR is refused with csr_invalid", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const { csrPem } = await generateWorkloadKeyAndCsr(WEB);
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    const at = der.indexOf(Buffer.from("/sa/web"));
    assert.ok(at > 0);
    der.write("/sa/wex", at); // same length: the structure parses, the signature no longer matches
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    const spiffeId = "spiffe://weft.local/ns/default/sa/wex";
    await assert.rejects(ca.signWorkloadCsr(tampered, { spiffeId }), (e) => isPkiError(e, "csr_invalid"));
    for (const junk of [
      "",
      "not a csr",
      "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----",
    ]) {
      await assert.rejects(ca.signWorkloadCsr(junk, { spiffeId: WEB }), (e) => isPkiError(e, "csr_invalid"));
    }
  });
});

test("a CSR with a non-P-256 key is refused with csr_key_unsupported", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const keys = (await webcrypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: "O=weft",
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-384" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: WEB }])],
    });
    await assert.rejects(ca.signWorkloadCsr(csr.toString("pem"), { spiffeId: WEB }), (e) =>
      isPkiError(e, "csr_key_unsupported"),
    );
  });
});

test("an ID outside the trust domain is refused", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const other = "spiffe://other.local/ns/default/sa/web";
    const { csrPem } = await generateWorkloadKeyAndCsr(other);
    await assert.rejects(ca.signWorkloadCsr(csrPem, { spiffeId: other }), (e) =>
      isPkiError(e, "trust_domain_mismatch"),
    );
    await assert.rejects(ca.signWorkloadCsr(csrPem, { spiffeId: "spiffe://weft.local/x" }), (e) =>
      isPkiError(e, "spiffe_id_invalid"),
    );
  });
});

test("the root is written once (key 0600) and reloaded unchanged", async () => {
  await withTempDir(async (dir) => {
    const a = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const keyStat = await stat(join(dir, "ca", "root.key"));
    assert.equal(keyStat.mode & 0o777, 0o600);
    assert.equal(await readFile(join(dir, "ca", "root.crt"), "utf8"), a.trustBundlePem);
    const b = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    assert.equal(b.trustBundlePem, a.trustBundlePem);
    // A certificate issued after the reload still chains to the first instance's root.
    assertIssuedBy((await b.issueWorkloadCertificate(WEB)).certPem, a.trustBundlePem);

    const root = new X509Certificate(a.trustBundlePem);
    assert.equal(root.ca, true);
    const years = (root.validToDate.getTime() - root.validFromDate.getTime()) / (365 * 24 * 3600 * 1000);
    assert.ok(years >= 9.99 && years < 10.01, String(years));
    const parsed = new x509.X509Certificate(a.trustBundlePem);
    assert.ok(parsed.getExtension("2.5.29.19")?.critical);
    assert.ok(parsed.getExtension("2.5.29.15")?.critical);
    assert.equal(createPrivateKey(await readFile(join(dir, "ca", "root.key"))).asymmetricKeyType, "ec");
  });
});

test("a root certificate without its key is an error, not a silent re-root", async () => {
  await withTempDir(async (dir) => {
    await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    await rm(join(dir, "ca", "root.key"));
    await assert.rejects(CertificateAuthority.loadOrCreate(dir, { trustDomain: TD }), (e) =>
      isPkiError(e, "ca_invalid"),
    );
  });
});

test("user-supplied root CA is used as is", async () => {
  await withTempDir(async (dir) => {
    const user = await writeUserCa(dir);
    const ca = await CertificateAuthority.loadOrCreate(dir, {
      trustDomain: TD,
      certFile: user.rootCertFile,
      keyFile: user.rootKeyFile,
    });
    assert.equal(ca.trustBundlePem, user.rootCertPem);
    const issued = await ca.issueWorkloadCertificate(WEB);
    assertIssuedBy(issued.certPem, user.rootCertPem);
    assert.equal(issued.chainPem, issued.certPem);
  });
});

test("user-supplied intermediate: chain carries the intermediate, bundle is the root", async () => {
  await withTempDir(async (dir) => {
    const user = await writeUserCa(dir);
    const ca = await CertificateAuthority.loadOrCreate(dir, {
      trustDomain: TD,
      certFile: user.intCertFile,
      keyFile: user.intKeyFile,
    });
    assert.equal(ca.trustBundlePem, user.rootCertPem);
    const issued = await ca.issueWorkloadCertificate(WEB);
    assert.equal(issued.chainPem, issued.certPem + user.intermediatePem);
    assertIssuedBy(issued.certPem, user.intermediatePem);
    assertIssuedBy(user.intermediatePem, user.rootCertPem);
  });
});

test("user-supplied CA: mismatched key or non-CA certificate is refused", async () => {
  await withTempDir(async (dir) => {
    const user = await writeUserCa(dir);
    const wrongKey = { trustDomain: TD, certFile: user.rootCertFile, keyFile: user.intKeyFile };
    await assert.rejects(CertificateAuthority.loadOrCreate(dir, wrongKey), (e) =>
      isPkiError(e, "ca_invalid"),
    );
    const own = await CertificateAuthority.loadOrCreate(join(dir, "own"), { trustDomain: TD });
    const leaf = await own.issueWorkloadCertificate(WEB);
    await mkdir(join(dir, "leaf"));
    await writeFile(join(dir, "leaf", "c.pem"), leaf.certPem);
    await writeFile(join(dir, "leaf", "k.pem"), leaf.keyPem);
    const notCa = {
      trustDomain: TD,
      certFile: join(dir, "leaf", "c.pem"),
      keyFile: join(dir, "leaf", "k.pem"),
    };
    await assert.rejects(CertificateAuthority.loadOrCreate(dir, notCa), (e) => isPkiError(e, "ca_invalid"));
    const half = { trustDomain: TD, certFile: user.rootCertFile };
    await assert.rejects(CertificateAuthority.loadOrCreate(dir, half), (e) => isPkiError(e, "ca_invalid"));
  });
});

test("server certificate carries DNS and IP SANs and chains to the bundle", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const s = await ca.issueServerCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"] });
    assertIssuedBy(s.certPem, ca.trustBundlePem);
    const cert = new X509Certificate(s.certPem);
    assert.equal(cert.checkHost("localhost"), "localhost");
    assert.equal(cert.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(cert.checkIP("::1"), "::1");
    await assert.rejects(ca.issueServerCertificate({ dnsNames: [], ipAddresses: ["nope"] }), (e) =>
      isPkiError(e, "ca_invalid"),
    );
  });
});
