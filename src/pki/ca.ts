// The mesh CA: certifies workload keys (from CSRs) with SPIFFE IDs, and issues the control plane's
// own server certificates. It never sees a workload's private key except in issueWorkloadCertificate,
// which exists for the control plane itself and for tests.
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { x509 } from "./x509.ts";
import { generateP256, pemOf } from "./keys.ts";
import { generateWorkloadKeyAndCsr } from "./csr.ts";
import { parseSpiffeId } from "./spiffe.ts";
import { loadCaMaterial, loadOrCreateOwnRoot, type CaMaterial } from "./ca-material.ts";
import { PkiError } from "./errors.ts";
import { LeafSigner, readWorkloadCsr } from "./workload-cert.ts";

export interface CaOptions {
  trustDomain: string;
  /** PEM of the user's CA certificate, optionally followed by its chain. Needs `keyFile`. */
  certFile?: string;
  keyFile?: string;
  /** Clock in epoch milliseconds; injectable for tests. */
  now?: () => number;
}

export interface IssuedCertificate {
  certPem: string;
  /** Leaf followed by intermediates; never the root. Use as `cert` in node:tls. */
  chainPem: string;
  notBefore: Date;
  notAfter: Date;
  /** Hex serial number. */
  serial: string;
}

export const DEFAULT_WORKLOAD_TTL_SECONDS = 24 * 3600;
const CLOCK_SKEW_MS = 60_000;

function checkTtl(ttlSeconds: number): void {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new PkiError("ttl_invalid", `certificate lifetime must be a positive number of seconds`);
  }
}

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x01; // positive, and no leading zero byte for DER to strip
  return b.toString("hex");
}

export class CertificateAuthority {
  readonly trustDomain: string;
  /** PEM of the root certificate(s) peers should trust. */
  readonly trustBundlePem: string;
  readonly #ca: CaMaterial;
  readonly #now: () => number;
  /** Workload leaves: node:crypto and DER (workload-cert.ts), not the ASN.1 library. */
  readonly #leaves: LeafSigner;

  private constructor(trustDomain: string, material: CaMaterial, now: () => number) {
    this.trustDomain = trustDomain;
    this.trustBundlePem = material.trustBundlePem;
    this.#ca = material;
    this.#now = now;
    const ski = material.cert.getExtension(x509.SubjectKeyIdentifierExtension);
    this.#leaves = new LeafSigner(
      new Uint8Array(material.cert.rawData),
      material.signing.keyObject,
      ski ? Buffer.from(ski.keyId, "hex") : undefined,
    );
  }

  /** The user's CA when certFile/keyFile are given; otherwise weft's root in <dir>/ca/, made if absent. */
  static async loadOrCreate(dir: string, opts: CaOptions): Promise<CertificateAuthority> {
    if (!parseSpiffeId(`spiffe://${opts.trustDomain}/ns/x/sa/x`)) {
      throw new PkiError("spiffe_id_invalid", `invalid trust domain ${JSON.stringify(opts.trustDomain)}`);
    }
    const now = opts.now ?? Date.now;
    let material: CaMaterial;
    if (opts.certFile !== undefined || opts.keyFile !== undefined) {
      if (opts.certFile === undefined || opts.keyFile === undefined) {
        throw new PkiError("ca_invalid", "a user-supplied CA needs both certFile and keyFile");
      }
      const read = async (p: string) => {
        try {
          return await readFile(p, "utf8");
        } catch (cause) {
          throw new PkiError("ca_invalid", `cannot read ${p}`, { cause });
        }
      };
      material = await loadCaMaterial(await read(opts.certFile), await read(opts.keyFile), opts.certFile);
    } else {
      material = await loadOrCreateOwnRoot(dir, opts.trustDomain, now());
    }
    return new CertificateAuthority(opts.trustDomain, material, now);
  }

  /**
   * Certifies the key in `csrPem` as `opts.spiffeId`. The caller decides which identity the requester
   * is entitled to (from its join token); the CSR must ask for exactly that identity.
   */
  async signWorkloadCsr(
    csrPem: string,
    opts: { spiffeId: string; ttlSeconds?: number },
  ): Promise<IssuedCertificate> {
    const id = parseSpiffeId(opts.spiffeId);
    if (!id)
      throw new PkiError("spiffe_id_invalid", `not a weft SPIFFE ID: ${JSON.stringify(opts.spiffeId)}`);
    if (id.trustDomain !== this.trustDomain) {
      throw new PkiError(
        "trust_domain_mismatch",
        `${opts.spiffeId} is outside trust domain ${JSON.stringify(this.trustDomain)}`,
      );
    }
    const ttlSeconds = opts.ttlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
    checkTtl(ttlSeconds);
    const csr = readWorkloadCsr(csrPem);
    if (csr.uris.length !== 1 || csr.uris[0] !== opts.spiffeId) {
      const got = csr.uris.length === 0 ? "no URI SAN" : csr.uris.map((u) => JSON.stringify(u)).join(", ");
      throw new PkiError(
        "csr_identity_mismatch",
        `CSR asks for ${got}; caller is entitled to ${opts.spiffeId}`,
      );
    }
    const { notBefore, notAfter } = this.#validity(ttlSeconds);
    const serial = randomSerial();
    const certPem = this.#leaves.issue({
      serialHex: serial,
      notBefore,
      notAfter,
      spki: csr.spki,
      spiffeId: opts.spiffeId,
    });
    return { certPem, chainPem: certPem + this.#ca.intermediatesPem, notBefore, notAfter, serial };
  }

  /** Certificates carry whole seconds; rounded here so the returned dates equal the encoded ones. */
  #validity(ttlSeconds: number): { notBefore: Date; notAfter: Date } {
    const nowMs = this.#now();
    return {
      notBefore: new Date(Math.floor((nowMs - CLOCK_SKEW_MS) / 1000) * 1000),
      notAfter: new Date(
        Math.floor(Math.min(nowMs + ttlSeconds * 1000, this.#ca.cert.notAfter.getTime()) / 1000) * 1000,
      ),
    };
  }

  /** Key + certificate for the control plane's own TLS endpoints (DNS and IP SANs, serverAuth). */
  async issueServerCertificate(opts: {
    dnsNames: string[];
    ipAddresses: string[];
    ttlSeconds?: number;
  }): Promise<{ keyPem: string; certPem: string; chainPem: string; notAfter: Date }> {
    const names: x509.JsonGeneralName[] = [];
    for (const d of opts.dnsNames) names.push({ type: "dns", value: d });
    for (const ip of opts.ipAddresses) {
      if (isIP(ip) === 0) throw new PkiError("ca_invalid", `not an IP address: ${JSON.stringify(ip)}`);
      names.push({ type: "ip", value: ip });
    }
    if (names.length === 0) throw new PkiError("ca_invalid", "a server certificate needs at least one name");
    const ttlSeconds = opts.ttlSeconds ?? 365 * 24 * 3600;
    checkTtl(ttlSeconds);
    const { keys, keyPem } = await generateP256();
    const publicKey = await x509.PublicKey.create(keys.publicKey);
    const issued = await this.#issue(publicKey, names, ttlSeconds, false);
    return { keyPem, certPem: issued.certPem, chainPem: issued.chainPem, notAfter: issued.notAfter };
  }

  /** Key, CSR and signature in one step — for the control plane itself and for tests. */
  async issueWorkloadCertificate(
    spiffeId: string,
    ttlSeconds?: number,
  ): Promise<IssuedCertificate & { keyPem: string }> {
    const { keyPem, csrPem } = await generateWorkloadKeyAndCsr(spiffeId);
    return { keyPem, ...(await this.signWorkloadCsr(csrPem, { spiffeId, ttlSeconds })) };
  }

  async #issue(
    publicKey: x509.PublicKey,
    names: x509.JsonGeneralName[],
    ttlSeconds: number,
    workload: boolean,
  ): Promise<IssuedCertificate> {
    const caCert = this.#ca.cert;
    const { notBefore, notAfter } = this.#validity(ttlSeconds);
    const caSki = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
    const aki = caSki
      ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId)
      : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey);
    const { digitalSignature, keyEncipherment } = x509.KeyUsageFlags;
    const usages = workload
      ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
      : [x509.ExtendedKeyUsage.serverAuth];
    const serial = randomSerial();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: workload ? "O=weft" : [{ CN: [names[0].value] }, { O: ["weft"] }],
      issuer: caCert.subjectName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.#ca.signing.key,
      signingAlgorithm: this.#ca.signing.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(digitalSignature | keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension(usages, false),
        new x509.SubjectAlternativeNameExtension(names, false),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
        aki,
      ],
    });
    const certPem = pemOf(cert);
    return {
      certPem,
      chainPem: certPem + this.#ca.intermediatesPem,
      notBefore,
      notAfter,
      serial,
    };
  }
}
