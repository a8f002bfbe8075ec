// Key material helpers: ECDSA P-256 generation, PEM encoding, and turning a PEM private key (any
// format node:crypto reads — PKCS#8, SEC1 "EC PRIVATE KEY", PKCS#1 RSA) into a WebCrypto signing key.
import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from "node:crypto";
import { ECDSA_P256, ECDSA_SHA256 } from "./x509.ts";
import { PkiError } from "./errors.ts";

const subtle = webcrypto.subtle;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export function derToPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Splits a PEM bundle into its CERTIFICATE blocks (other blocks are ignored), normalised. */
export function splitPemCertificates(pem: string): string[] {
  const out: string[] = [];
  const re = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;
  for (const m of pem.matchAll(re)) {
    out.push(derToPem("CERTIFICATE", Buffer.from(m[1].replace(/\s+/g, ""), "base64")));
  }
  return out;
}

export interface GeneratedKey {
  keys: CryptoKeyPair;
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"), directly usable as `key` in node:tls. */
  keyPem: string;
}

/** A fresh ECDSA P-256 key pair. The private key stays in this process. */
export async function generateP256(): Promise<GeneratedKey> {
  const keys = (await subtle.generateKey(ECDSA_P256, true, ["sign", "verify"])) as CryptoKeyPair;
  const pkcs8 = await subtle.exportKey("pkcs8", keys.privateKey);
  // Re-import as non-extractable: nothing after this point needs the raw key bytes.
  const privateKey = await subtle.importKey("pkcs8", pkcs8, ECDSA_P256, false, ["sign"]);
  return { keys: { privateKey, publicKey: keys.publicKey }, keyPem: derToPem("PRIVATE KEY", pkcs8) };
}

export interface SigningKey {
  key: CryptoKey;
  algorithm: webcrypto.EcdsaParams | webcrypto.Algorithm;
  keyObject: KeyObject;
}

/**
 * Parses a PEM private key for certificate signing. EC keys (P-256/P-384) sign with ECDSA, RSA keys
 * with PKCS#1 v1.5; both with SHA-256 (SHA-384 for P-384).
 */
export async function importSigningKey(pem: string, what: string): Promise<SigningKey> {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(pem);
  } catch (cause) {
    throw new PkiError("ca_invalid", `${what}: not a readable PEM private key`, { cause });
  }
  const pkcs8 = keyObject.export({ format: "der", type: "pkcs8" });
  const type = keyObject.asymmetricKeyType;
  if (type === "ec") {
    const curve = keyObject.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === "prime256v1" ? "P-256" : curve === "secp384r1" ? "P-384" : undefined;
    if (!namedCurve) throw new PkiError("ca_invalid", `${what}: unsupported EC curve ${curve ?? "?"}`);
    const key = await subtle.importKey("pkcs8", pkcs8, { name: "ECDSA", namedCurve }, false, ["sign"]);
    const hash = namedCurve === "P-256" ? "SHA-256" : "SHA-384";
    return { key, algorithm: namedCurve === "P-256" ? ECDSA_SHA256 : { name: "ECDSA", hash }, keyObject };
  }
  if (type === "rsa") {
    const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    const key = await subtle.importKey("pkcs8", pkcs8, alg, false, ["sign"]);
    return { key, algorithm: alg, keyObject };
  }
  throw new PkiError("ca_invalid", `${what}: unsupported key type ${type ?? "?"}`);
}

/** True when the private key and the certificate's public key belong together. */
export function keyMatchesCertificate(keyObject: KeyObject, certPublicKey: KeyObject): boolean {
  const a = createPublicKey(keyObject).export({ format: "der", type: "spki" });
  const b = certPublicKey.export({ format: "der", type: "spki" });
  return a.equals(b);
}

/** PEM text of a @peculiar/x509 object, with the trailing newline it omits (so bundles concatenate). */
export function pemOf(obj: { toString(format: "pem"): string }): string {
  const pem = obj.toString("pem");
  return pem.endsWith("\n") ? pem : `${pem}\n`;
}
