// TLS material → node:tls secure contexts, built once per certificate (never per connection), and
// the public facts about a certificate that the admin server may show (never the key).

import tls from "node:tls";
import { X509Certificate } from "node:crypto";
import type { TlsMaterial } from "../types.ts";

/**
 * Protocol floor for sidecar-to-sidecar traffic: TLS 1.3 only. Weft talks to weft, so nothing needs
 * TLS 1.2 and its CBC-SHA1 suites (the control plane's public API keeps its own floor).
 */
export const MIN_TLS_VERSION = "TLSv1.3";
export const ALPN_HTTP1 = ["http/1.1"];
/**
 * What a client sidecar offers a peer sidecar: HTTP/2 first (requests multiplexed over one
 * connection), HTTP/1.1 for peers that do not speak it yet (transport/alpn-pool.ts).
 */
export const ALPN_MESH_CLIENT = ["h2", "http/1.1"];

/** Options for the inbound server (createServer / setSecureContext): our cert, peers' trust bundle. */
export function serverContextOptions(m: TlsMaterial): tls.SecureContextOptions {
  return { key: m.keyPem, cert: m.certChainPem, ca: m.trustBundlePem, minVersion: MIN_TLS_VERSION };
}

/** Client context for mTLS origination: our cert is the client certificate, the bundle verifies the server. */
export function clientSecureContext(m: TlsMaterial): tls.SecureContext {
  return tls.createSecureContext({
    key: m.keyPem,
    cert: m.certChainPem,
    ca: m.trustBundlePem,
    minVersion: MIN_TLS_VERSION,
  });
}

export interface CertificateInfo {
  spiffeId: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  issuer: string;
  fingerprint256: string;
  /** Seconds until notAfter (negative once expired), computed when asked. */
  expiresInSeconds: number;
}

/** Facts about the leaf of `m.certChainPem`; nothing secret. */
export function certificateInfo(m: TlsMaterial, now = Date.now()): CertificateInfo {
  const leaf = new X509Certificate(m.certChainPem);
  const notAfter = new Date(leaf.validTo);
  return {
    spiffeId: m.spiffeId,
    serial: leaf.serialNumber,
    notBefore: new Date(leaf.validFrom).toISOString(),
    notAfter: notAfter.toISOString(),
    issuer: leaf.issuer,
    fingerprint256: leaf.fingerprint256,
    expiresInSeconds: Math.floor((notAfter.getTime() - now) / 1000),
  };
}
