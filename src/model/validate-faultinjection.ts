// FaultInjection (weft.dev/v1alpha1): delays and aborts a share of the requests of an HTTPRoute or
// GRPCRoute rule that names it through an ExtensionRef filter — for testing how callers cope with a
// slow or failing dependency, without touching it. An abort answers with an HTTP status or, as
// Envoy's and Istio's faults can, a gRPC status (a gRPC-shaped reply to gRPC callers).

import type { Checker } from "./checker.ts";
import { compact } from "./checker.ts";
import type { FieldPath } from "./field-path.ts";
import { GRPC_STATUS_NAMES } from "./grpc-status.ts";
import type { FaultInjectionSpec, Metadata } from "./resources.ts";
import { durationField, percentField } from "./validate-values.ts";

export const FAULT_INJECTION_SPEC_FIELDS = ["delay", "abort"] as const;
export const FAULT_DELAY_FIELDS = ["fixedDelay", "percent"] as const;
export const FAULT_ABORT_FIELDS = ["httpStatus", "grpcStatus", "percent"] as const;

export function validateFaultInjectionSpec(
  c: Checker,
  value: unknown,
  _meta: Metadata | undefined,
): FaultInjectionSpec | undefined {
  const path = ["spec"];
  const spec = c.mapping(path, value, FAULT_INJECTION_SPEC_FIELDS, { required: true });
  if (!spec) return undefined;
  // A FaultInjection that injects nothing is a mistake (often a mis-indented delay/abort).
  if (spec.delay == null && spec.abort == null) c.report(path, "must set delay, abort or both");
  return compact({
    delay: validateDelay(c, [...path, "delay"], spec.delay),
    abort: validateAbort(c, [...path, "abort"], spec.abort),
  });
}

function validateDelay(c: Checker, path: FieldPath, value: unknown): FaultInjectionSpec["delay"] {
  const raw = c.mapping(path, value, FAULT_DELAY_FIELDS);
  if (!raw) return undefined;
  const fixedDelay = durationField(c, [...path, "fixedDelay"], raw.fixedDelay, { required: true });
  const percent = percentField(c, [...path, "percent"], raw.percent);
  return fixedDelay === undefined ? undefined : compact({ fixedDelay, percent });
}

function validateAbort(c: Checker, path: FieldPath, value: unknown): FaultInjectionSpec["abort"] {
  const raw = c.mapping(path, value, FAULT_ABORT_FIELDS);
  if (!raw) return undefined;
  // 2xx is allowed: answering "200, empty" without calling the service is a useful fault too. 1xx
  // are not final responses, so they cannot end a request.
  if (raw.httpStatus == null && raw.grpcStatus == null) {
    c.report(path, "must set httpStatus (e.g. 503) or grpcStatus (e.g. UNAVAILABLE)");
    return undefined;
  }
  if (raw.httpStatus != null && raw.grpcStatus != null) {
    c.report([...path, "grpcStatus"], "set httpStatus or grpcStatus, not both", { key: true });
    return undefined;
  }
  const httpStatus = c.integer([...path, "httpStatus"], raw.httpStatus, { min: 200, max: 599 });
  // Names, as in Istio's fault abort (grpcStatus: "UNAVAILABLE"): numbers are easy to misread.
  const grpcStatus =
    typeof raw.grpcStatus === "number"
      ? reportGrpcNumber(c, [...path, "grpcStatus"], raw.grpcStatus)
      : c.oneOf([...path, "grpcStatus"], raw.grpcStatus, GRPC_STATUS_NAMES);
  const percent = percentField(c, [...path, "percent"], raw.percent);
  return httpStatus === undefined && grpcStatus === undefined
    ? undefined
    : compact({ httpStatus, grpcStatus, percent });
}

function reportGrpcNumber(c: Checker, path: FieldPath, n: number): undefined {
  const name = GRPC_STATUS_NAMES[n];
  c.report(
    path,
    name
      ? `must be a gRPC status name: write ${name} for ${n}`
      : `must be a gRPC status name such as UNAVAILABLE (got ${n}, which is not a gRPC status)`,
  );
  return undefined;
}
