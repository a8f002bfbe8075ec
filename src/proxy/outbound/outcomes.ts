// What the end of an exchange or attempt says about the endpoint, in the terms balancers, outlier
// detection (../balancer/endpoint-set.ts) and retry conditions (retry.ts) use. Upstream errors are
// rescued once, by errors.ts; this only reads its local reply codes.

import type { Outcome } from "../balancer/endpoint-set.ts";
import { rescue, type LocalReplyCode } from "../errors.ts";
import type { AttemptFailure } from "./retry.ts";
import { requestNotSent } from "../transport/upstream.ts";

/** A response from the endpoint (0: none, the client went away). */
export function outcomeOfStatus(status: number): Outcome {
  if (status === 502 || status === 503 || status === 504) return "gateway";
  if (status >= 500) return "http5xx";
  if (status === 0) return "local";
  return "success";
}

/** A local reply the proxy made instead of the endpoint's response. */
export function outcomeOfReply(code: LocalReplyCode): Outcome {
  switch (code) {
    case "upstream_unavailable":
    case "upstream_tls_error":
      return "connect";
    case "upstream_reset":
      return "reset";
    case "timeout":
      return "timeout";
    default:
      return "local"; // circuit open, a bad request, no certificate yet: not the endpoint's doing
  }
}

/** An attempt's upstream error as a retry condition; undefined when it is not the endpoint's failure. */
export function failureOfError(err: Error): AttemptFailure | undefined {
  switch (outcomeOfReply(rescue(err, "").code)) {
    case "connect":
      return { kind: "connect-failure" };
    case "timeout":
      return { kind: "timeout" };
    case "reset":
      return { kind: "reset" };
    default:
      return undefined;
  }
}

/**
 * The endpoint outcome of an error that proves the request never left the proxy and may go to
 * another endpoint (connect refused / timed out, TLS handshake failed, a connection found closed
 * before anything was written, a pool closed); undefined for anything else — a request that may
 * have been received, or a refusal that is not the endpoint's (circuit open, no certificate yet).
 */
export function notSentOutcome(err: Error): "connect" | "reset" | undefined {
  if (!requestNotSent(err)) return undefined;
  const o = outcomeOfReply(rescue(err, "").code);
  return o === "connect" || o === "reset" ? o : undefined;
}

export function outcomeOfFailure(f: AttemptFailure | undefined): Outcome {
  if (f === undefined) return "local";
  switch (f.kind) {
    case "connect-failure":
      return "connect";
    case "timeout":
      return "timeout";
    case "reset":
      return "reset";
    default:
      return outcomeOfStatus(f.status);
  }
}
