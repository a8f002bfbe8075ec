// The proxy's identity: a key generated here (it never leaves the process), a certificate obtained by
// CSR with the join token, renewed at 50–60% of its lifetime; on failure it retries with backoff and
// keeps the current certificate until it expires. The first certificate too is retried while the
// control plane is busy or unreachable (a 503 with Retry-After during a start storm, a reset, a
// timeout), with full jitter (backoff.ts), for up to `startDeadlineMs`; a refusal fails the start.

import { X509Certificate } from "node:crypto";
import { generateWorkloadKeyAndCsr } from "../../pki/csr.ts";
import type { TlsMaterial } from "../types.ts";
import { Cell } from "./cell.ts";
import { ApiCallError, callApi, type ApiTarget } from "../../client/api-client.ts";
import { retryDelayMs, withRetry, type BackoffPolicy } from "./backoff.ts";

/** Waits between attempts at the first certificate, and between failed renewals. */
export const CERT_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 30_000 };
/** How long a starting proxy keeps trying for its first certificate by default. */
export const DEFAULT_START_DEADLINE_MS = 5 * 60_000;

export interface CertificateManagerOptions {
  /** How long start() keeps retrying a busy or unreachable control plane (ms). */
  startDeadlineMs?: number;
  /** Each failed attempt at the first certificate that will be retried. */
  onStartRetry?: (err: Error, delayMs: number) => void;
  backoff?: BackoffPolicy;
}

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
  readonly #opts: CertificateManagerOptions;
  readonly #stop = new AbortController();
  #timer?: NodeJS.Timeout;
  #stopped = false;
  onError: (err: Error) => void = () => {};

  constructor(target: ApiTarget, spiffeId: string, opts: CertificateManagerOptions = {}) {
    this.#target = target;
    this.#spiffeId = spiffeId;
    this.#opts = opts;
  }

  /**
   * Obtains the first certificate, retrying while the control plane is busy or unreachable; rejects
   * if it refuses (e.g. a token for another service) or the start deadline passes.
   */
  async start(): Promise<void> {
    await withRetry(() => this.#obtain(), {
      policy: this.#opts.backoff ?? CERT_BACKOFF,
      deadlineMs: this.#opts.startDeadlineMs ?? DEFAULT_START_DEADLINE_MS,
      onRetry: (err, delay) => this.#opts.onStartRetry?.(err, delay),
      signal: this.#stop.signal,
    });
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
          const policy = this.#opts.backoff ?? CERT_BACKOFF;
          const asked = err instanceof ApiCallError ? err.retryAfterMs : undefined;
          this.#schedule(retryDelayMs(attempt, policy, asked), attempt + 1);
        });
      },
      Math.max(0, ms),
    );
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    this.#stop.abort();
    clearTimeout(this.#timer);
  }
}
