// GRPCRoute rule `retry` (a weft extension; see validate-grpcroute.ts): HTTPRoute's retry stanza
// (attempts, backoff, maxBackoff, hedge — checked by the same code), where `on` lists gRPC statuses
// by Envoy's names (cancelled, deadline-exceeded, internal, resource-exhausted, unavailable) beside
// the connection-level conditions. HTTPRoute's `codes` (HTTP statuses) and `nonIdempotent` (every
// gRPC call is a POST) have no meaning here and are refused with a pointer to what to write instead.

import type { Checker } from "./checker.ts";
import { compact } from "./checker.ts";
import type { FieldPath } from "./field-path.ts";
import { GRPC_RETRY_CONDITION_NAMES } from "./grpc-status.ts";
import type { GRPCRetryOn, GRPCRouteRetry } from "./resources.ts";
import { validateRetry } from "./validate-httproute-retry.ts";
import { reportDuplicates } from "./validate-values.ts";

export const GRPC_RETRY_FIELDS = ["attempts", "on", "backoff", "maxBackoff", "hedge"] as const;
export const GRPC_RETRY_ON = [
  ...GRPC_RETRY_CONDITION_NAMES,
  "connect-failure",
  "reset",
  "timeout",
] as const satisfies readonly GRPCRetryOn[];

export function validateGrpcRetry(c: Checker, path: FieldPath, value: unknown): GRPCRouteRetry | undefined {
  const raw = c.mapping(path, value, [...GRPC_RETRY_FIELDS, "codes", "nonIdempotent"]);
  if (!raw) return undefined;
  const { on: rawOn, codes, nonIdempotent, ...shared } = raw;
  if (codes != null)
    c.report(
      [...path, "codes"],
      `HTTP status codes do not apply to gRPC calls: list gRPC statuses in ${"`on`"} instead (${GRPC_RETRY_CONDITION_NAMES.join(", ")})`,
      { key: true },
    );
  if (nonIdempotent != null)
    c.report(
      [...path, "nonIdempotent"],
      "does not apply to GRPCRoute: every gRPC call is a POST, and the statuses in `on` say what is safe to retry",
      { key: true },
    );
  // attempts, backoff, maxBackoff and hedge mean the same as on an HTTPRoute: checked by its code.
  const base = validateRetry(c, path, shared);

  const onRaw = c.list([...path, "on"], rawOn, { max: GRPC_RETRY_ON.length });
  const on = onRaw?.map((cond, i) => c.oneOf([...path, "on", i], cond, GRPC_RETRY_ON, { required: true }));
  if (on) reportDuplicates(c, [...path, "on"], on);
  return compact({
    attempts: base?.attempts,
    on: on?.filter((x) => x !== undefined),
    backoff: base?.backoff,
    maxBackoff: base?.maxBackoff,
    hedge: base?.hedge,
  });
}
