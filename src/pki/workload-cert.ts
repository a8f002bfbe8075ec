// The CA's hot path — a workload's CSR in, its certificate out — written with node:crypto and a few
// lines of DER instead of @peculiar/x509. Under a start storm every proxy comes through here once; the
// library's ASN.1 object model cost ~6.4 ms of CPU per certificate, this path ~0.45 ms (CSR check and
// signature included; docs/benchmarks.md), so signing is no longer what caps how fast a fleet starts.
//
// readWorkloadCsr: the CSR is hostile input. It is walked with der-reader.ts (bounded, no copies),
// must be PKCS#10 v1 with an ECDSA P-256 key and an ecdsa-with-SHA256 signature that verifies; the
// URI SANs it requests (in any extensionRequest's SAN extensions) are returned for the CA to check.
// LeafSigner: the certificate profile is the one the CA always issued (v3; subject O=weft; basic
// constraints cA=false and key usage digitalSignature|keyEncipherment, both critical; extended key
// usage serverAuth+clientAuth; the SPIFFE ID as URI SAN; subject and authority key identifiers),
// signed with the CA's key as node:crypto KeyObject (EC P-256/P-384 or RSA, as keys.ts imports them).

import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { bitString, octetString, oid, sequence, set, tlv, toPem, utf8String } from "./der.ts";
import {
  children,
  contentOf,
  DerError,
  encodingOf,
  expectTag,
  readElement,
  readWhole,
  type DerElement,
} from "./der-reader.ts";
import { PkiError } from "./errors.ts";

const SEQ = 0x30;
const SET = 0x31;
const INT = 0x02;
const OIDT = 0x06;
const BITS = 0x03;
const OCTETS = 0x04;
const CTX0 = 0xa0;
const URI = 0x86;

const OID_EXTENSION_REQUEST = oid("1.2.840.113549.1.9.14");
const OID_SUBJECT_ALT_NAME = oid("2.5.29.17");
const OID_ECDSA_SHA256 = oid("1.2.840.10045.4.3.2");
const MAX_CSR_LENGTH = 16 * 1024;

export interface WorkloadCsr {
  /** The requester's public key, DER SubjectPublicKeyInfo (a view into the decoded CSR). */
  spki: Buffer;
  /** Every URI SAN requested. */
  uris: string[];
}

/** Parses and checks a PEM CSR; throws PkiError csr_invalid / csr_key_unsupported. */
export function readWorkloadCsr(csrPem: unknown): WorkloadCsr {
  if (typeof csrPem !== "string" || csrPem.length > MAX_CSR_LENGTH)
    throw new PkiError("csr_invalid", "CSR is missing or too large");
  const der = pemBody(csrPem);
  let info: DerElement, spkiEl: DerElement, algOid: DerElement, sig: DerElement, uris: string[];
  try {
    let sigAlg: DerElement;
    const top = expectTag(readWhole(der), SEQ, "CertificationRequest");
    [info, sigAlg, sig] = children(der, top);
    expectTag(info, SEQ, "certificationRequestInfo");
    expectTag(sigAlg, SEQ, "signatureAlgorithm");
    expectTag(sig, BITS, "signature");
    const [version, subject, spki, attributes, ...extra] = children(der, info);
    const v = expectTag(version, INT, "version");
    if (v.end - v.contentStart !== 1 || der[v.contentStart] !== 0)
      throw new DerError("version must be 0 (v1)");
    expectTag(subject, SEQ, "subject");
    spkiEl = expectTag(spki, SEQ, "subjectPKInfo");
    if (extra.length > 0) throw new DerError("unexpected fields after attributes");
    uris = attributes ? requestedUris(der, expectTag(attributes, CTX0, "attributes")) : [];
    algOid = expectTag(readElement(der, sigAlg.contentStart, sigAlg.end), OIDT, "signature algorithm");
    if (sig.end === sig.contentStart) throw new DerError("empty signature");
  } catch (cause) {
    if (cause instanceof DerError)
      throw new PkiError("csr_invalid", `CSR is not a readable PKCS#10 request: ${cause.message}`, { cause });
    throw cause;
  }
  const spki = encodingOf(der, spkiEl);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (cause) {
    throw new PkiError("csr_key_unsupported", "CSR public key is not readable", { cause });
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
    throw new PkiError("csr_key_unsupported", "CSR key must be ECDSA P-256");
  const sigBits = contentOf(der, sig);
  if (!encodingOf(der, algOid).equals(OID_ECDSA_SHA256) || sigBits[0] !== 0)
    throw new PkiError("csr_invalid", "CSR must be signed with ecdsa-with-SHA256");
  const ok = verify("sha256", encodingOf(der, info), { key, dsaEncoding: "der" }, sigBits.subarray(1));
  if (!ok) throw new PkiError("csr_invalid", "CSR signature does not verify");
  return { spki, uris };
}

const PEM_BEGIN = "-----BEGIN CERTIFICATE REQUEST-----";
const PEM_END = "-----END CERTIFICATE REQUEST-----";

/** The DER inside one PEM CERTIFICATE REQUEST block (found by its markers: no regex to backtrack). */
function pemBody(pem: string): Buffer {
  const text = pem.trim();
  if (
    !text.startsWith(PEM_BEGIN) ||
    !text.endsWith(PEM_END) ||
    text.length < PEM_BEGIN.length + PEM_END.length
  )
    throw new PkiError("csr_invalid", "CSR is not a readable PKCS#10 request (no PEM CERTIFICATE REQUEST)");
  const b64 = text.slice(PEM_BEGIN.length, text.length - PEM_END.length).replace(/\s/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64))
    throw new PkiError("csr_invalid", "CSR is not a readable PKCS#10 request (bad base64)");
  return Buffer.from(b64, "base64");
}

/** URI SANs across every extensionRequest attribute's SAN extensions. */
function requestedUris(der: Buffer, attributes: DerElement): string[] {
  const uris: string[] = [];
  for (const attr of children(der, attributes)) {
    const [type, values] = children(der, expectTag(attr, SEQ, "attribute"));
    expectTag(values, SET, "attribute values");
    if (!encodingOf(der, expectTag(type, OIDT, "attribute type")).equals(OID_EXTENSION_REQUEST)) continue;
    for (const exts of children(der, values))
      for (const ext of children(der, expectTag(exts, SEQ, "extensions"))) {
        const parts = children(der, expectTag(ext, SEQ, "extension"));
        if (!encodingOf(der, expectTag(parts[0], OIDT, "extnID")).equals(OID_SUBJECT_ALT_NAME)) continue;
        const value = expectTag(parts[parts.length - 1], OCTETS, "extnValue");
        const names = readElement(der, value.contentStart, value.end);
        if (names.end !== value.end) throw new DerError("bytes after subjectAltName");
        for (const n of children(der, expectTag(names, SEQ, "GeneralNames")))
          if (n.tag === URI) uris.push(contentOf(der, n).toString("latin1"));
      }
  }
  return uris;
}

/** What a leaf says besides its key and names. */
export interface LeafFields {
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key. */
  spki: Buffer;
  spiffeId: string;
}

/** Signs workload leaves under one CA certificate (its DER) with its private key. */
export class LeafSigner {
  readonly #issuer: Buffer;
  readonly #aki: Buffer;
  readonly #key: KeyObject;
  readonly #hash: string;
  readonly #alg: Buffer;

  /** `caSki`: the CA certificate's subject key identifier, if it has one. */
  constructor(caCertDer: Uint8Array, key: KeyObject, caSki?: Buffer) {
    const der = Buffer.from(caCertDer);
    const [tbs] = children(der, readWhole(der));
    const fields = children(der, tbs);
    const base = fields[0].tag === CTX0 ? 1 : 0; // [0] version is present in v3
    this.#issuer = Buffer.from(encodingOf(der, fields[base + 4]));
    const caSpki = fields[base + 5];
    this.#aki = caSki ?? keyIdentifier(der, caSpki);
    this.#key = key;
    const type = key.asymmetricKeyType;
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (type === "ec" && curve === "prime256v1")
      [this.#hash, this.#alg] = ["sha256", sequence(oid("1.2.840.10045.4.3.2"))];
    else if (type === "ec" && curve === "secp384r1")
      [this.#hash, this.#alg] = ["sha384", sequence(oid("1.2.840.10045.4.3.3"))];
    else if (type === "rsa")
      [this.#hash, this.#alg] = ["sha256", sequence(oid("1.2.840.113549.1.1.11"), Buffer.from([0x05, 0x00]))];
    else throw new PkiError("ca_invalid", `unsupported CA key for signing: ${type ?? "?"} ${curve ?? ""}`);
  }

  /** The leaf, PEM. */
  issue(f: LeafFields): string {
    const spki = readWhole(f.spki);
    const extensions = [
      extension("2.5.29.19", true, sequence()), // basicConstraints: cA false (the default, so empty)
      extension("2.5.29.15", true, Buffer.from([BITS, 0x02, 0x05, 0xa0])), // digitalSignature|keyEncipherment
      extension("2.5.29.37", false, sequence(oid("1.3.6.1.5.5.7.3.1"), oid("1.3.6.1.5.5.7.3.2"))),
      extension("2.5.29.17", false, sequence(tlv(URI, Buffer.from(f.spiffeId, "latin1")))),
      extension("2.5.29.14", false, octetString(keyIdentifier(f.spki, spki))),
      extension("2.5.29.35", false, sequence(tlv(0x80, this.#aki))),
    ];
    const tbs = sequence(
      tlv(CTX0, tlv(INT, Buffer.from([2]))),
      tlv(INT, Buffer.from(f.serialHex, "hex")),
      this.#alg,
      this.#issuer,
      sequence(time(f.notBefore), time(f.notAfter)),
      sequence(set(sequence(oid("2.5.4.10"), utf8String("weft")))),
      f.spki,
      tlv(0xa3, sequence(...extensions)),
    );
    const signature = sign(this.#hash, tbs, { key: this.#key, dsaEncoding: "der" });
    return toPem("CERTIFICATE", sequence(tbs, this.#alg, bitString(signature)));
  }
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), octetString(value));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value. */
function keyIdentifier(der: Buffer, spki: DerElement): Buffer {
  const [, bits] = children(der, spki);
  return createHash("sha1")
    .update(contentOf(der, expectTag(bits, BITS, "subjectPublicKey")).subarray(1))
    .digest();
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z";
  const year = d.getUTCFullYear();
  return year < 2050
    ? tlv(0x17, Buffer.from(digits.slice(2), "ascii"))
    : tlv(0x18, Buffer.from(digits, "ascii"));
}
