// The proxy's identity: a key generated here (it never leaves the process), a certificate obtained by
// CSR with the join token, renewed at 50–60% of its lifetime; on failure it retries with backoff and
// keeps the current certificate until it expires.

import { X509Certificate } from "node:crypto";
import { generateWorkloadKeyAndCsr } from "../../pki/csr.ts";
import type { TlsMaterial } from "../types.ts";
import { Cell } from "./cell.ts";
import { callApi, type ApiTarget } from "../../client/api-client.ts";

interface SignResponse {
  identity: string;
  certChain: string;
  trustBundle: string;
  notAfter: string;
}

export class CertificateManager {
  readonly material = new Cell<TlsMaterial & { notAfter: Date; serial: string }>();
  readonly #target: ApiTarget;
  readonly #spiffeId: string;
  #timer?: NodeJS.Timeout;
  #stopped = false;
  onError: (err: Error) => void = () => {};

  constructor(target: ApiTarget, spiffeId: string) {
    this.#target = target;
    this.#spiffeId = spiffeId;
  }

  /** Obtains the first certificate; rejects if the control plane refuses (e.g. a token for another service). */
  async start(): Promise<void> {
    await this.#obtain();
  }

  async #obtain(): Promise<void> {
    const { keyPem, csrPem } = await generateWorkloadKeyAndCsr(this.#spiffeId);
    const cur = this.material.current();
    // Renew with the current certificate while it is valid (join tokens may have expired by then).
    const target: ApiTarget =
      cur && cur.notAfter.getTime() > Date.now()
        ? { server: this.#target.server, ca: this.#target.ca, cert: cur }
        : this.#target;
    const res = await callApi<SignResponse>(target, "POST", "/api/v1/certificates", { csr: csrPem });
    const leaf = new X509Certificate(res.certChain);
    const notAfter = new Date(leaf.validTo);
    this.material.set({
      keyPem,
      certChainPem: res.certChain,
      trustBundlePem: res.trustBundle,
      spiffeId: res.identity,
      notAfter,
      serial: leaf.serialNumber,
    });
    const lifetime = notAfter.getTime() - new Date(leaf.validFrom).getTime();
    this.#schedule(
      lifetime * (0.5 + Math.random() * 0.1) - (Date.now() - new Date(leaf.validFrom).getTime()),
    );
  }

  #schedule(ms: number, attempt = 0): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => {
        this.#obtain().catch((err: Error) => {
          this.onError(err);
          this.#schedule(Math.min(30_000, 500 * 2 ** attempt) * (0.5 + Math.random()), attempt + 1);
        });
      },
      Math.max(0, ms),
    );
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
