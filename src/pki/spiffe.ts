// SPIFFE IDs in weft's one shape: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// Parsing is strict (no case folding, no percent-encoding, no query/fragment/port/userinfo, no
// extra path segments), so two spellings of one identity cannot exist.
import type { PeerCertificate } from "node:tls";
import type { X509Certificate } from "node:crypto";
import { PkiError } from "./errors.ts";

export interface SpiffeParts {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

// Character sets from the SPIFFE ID specification (§2.1, §2.2).
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const SEGMENT = /^[A-Za-z0-9._-]{1,253}$/;
const MAX_LENGTH = 2048;
const PREFIX = "spiffe://";

/** True when `s` can be a namespace or service-account segment of a SPIFFE ID. */
export function validSegment(s: string): boolean {
  return SEGMENT.test(s) && s !== "." && s !== "..";
}

/** Builds a SPIFFE ID; throws `spiffe_id_invalid` when a part cannot appear in one. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw new PkiError("spiffe_id_invalid", `invalid trust domain ${JSON.stringify(trustDomain)}`);
  }
  if (!validSegment(namespace)) {
    throw new PkiError("spiffe_id_invalid", `invalid namespace ${JSON.stringify(namespace)}`);
  }
  if (!validSegment(serviceAccount)) {
    throw new PkiError("spiffe_id_invalid", `invalid service account ${JSON.stringify(serviceAccount)}`);
  }
  return `${PREFIX}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** Parses a weft SPIFFE ID; anything else (including other valid SPIFFE IDs) gives undefined. */
export function parseSpiffeId(s: string): SpiffeParts | undefined {
  if (typeof s !== "string" || s.length > MAX_LENGTH || !s.startsWith(PREFIX)) return undefined;
  const parts = s.slice(PREFIX.length).split("/");
  if (parts.length !== 5 || parts[1] !== "ns" || parts[3] !== "sa") return undefined;
  const [trustDomain, , namespace, , serviceAccount] = parts;
  if (!TRUST_DOMAIN.test(trustDomain) || !validSegment(namespace) || !validSegment(serviceAccount)) {
    return undefined;
  }
  return { trustDomain, namespace, serviceAccount };
}

/**
 * Node renders subjectAltName as `TYPE:value, TYPE:value`; since the CVE-2021-44532 fix a value that
 * contains a delimiter is emitted as a JSON string literal (`URI:"a, b"`). We never need to decode
 * those: a quoted URI cannot be a valid SPIFFE ID, so its presence makes the certificate ambiguous.
 */
function uriSans(subjectAltName: string): string[] | undefined {
  const uris: string[] = [];
  for (const entry of subjectAltName.split(", ")) {
    if (!entry.startsWith("URI:")) continue;
    const value = entry.slice(4);
    if (value.startsWith('"')) return undefined;
    uris.push(value);
  }
  return uris;
}

/**
 * The SPIFFE ID of a peer certificate (from `tlsSocket.getPeerCertificate()` or a
 * `crypto.X509Certificate`). Per the X.509-SVID spec the certificate must carry exactly one URI SAN,
 * and it must be a weft SPIFFE ID; otherwise undefined. This reads the certificate only: call it on
 * a certificate the TLS stack has already verified (`socket.authorized`).
 */
export function peerSpiffeId(cert: PeerCertificate | X509Certificate | undefined | null): string | undefined {
  if (!cert || typeof cert !== "object") return undefined;
  const san =
    "subjectaltname" in cert
      ? (cert as PeerCertificate).subjectaltname
      : (cert as X509Certificate).subjectAltName;
  if (typeof san !== "string" || san.length === 0) return undefined;
  const uris = uriSans(san);
  if (!uris || uris.length !== 1) return undefined;
  return parseSpiffeId(uris[0]) ? uris[0] : undefined;
}
