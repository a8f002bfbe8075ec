// Real mesh certificates for tests, from src/pki's CA (one per test file, in a temp directory).

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority } from "../../pki/ca.ts";
import type { TlsMaterial } from "../types.ts";

export const TRUST_DOMAIN = "weft.local";

export function sid(service: string, namespace = "default", td = TRUST_DOMAIN): string {
  return `spiffe://${td}/ns/${namespace}/sa/${service}`;
}

export interface TestCa {
  ca: CertificateAuthority;
  material(spiffeId: string, ttlSeconds?: number): Promise<TlsMaterial & { serial: string; notAfter: Date }>;
  cleanup(): Promise<void>;
}

export async function createTestCa(trustDomain = TRUST_DOMAIN): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), "weft-proxy-ca-"));
  const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain });
  return {
    ca,
    async material(spiffeId, ttlSeconds) {
      const issued = await ca.issueWorkloadCertificate(spiffeId, ttlSeconds);
      return {
        keyPem: issued.keyPem,
        certChainPem: issued.chainPem,
        trustBundlePem: ca.trustBundlePem,
        spiffeId,
        serial: issued.serial,
        notAfter: issued.notAfter,
      };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
