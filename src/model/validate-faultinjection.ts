// FaultInjection (weft.dev/v1alpha1): delays and aborts a share of the requests of an HTTPRoute rule
// that names it through an ExtensionRef filter — for testing how callers cope with a slow or failing
// dependency, without touching it.

import type { Checker } from "./checker.ts";
import { compact } from "./checker.ts";
import type { FieldPath } from "./field-path.ts";
import type { FaultInjectionSpec, Metadata } from "./resources.ts";
import { durationField, percentField } from "./validate-values.ts";

export const FAULT_INJECTION_SPEC_FIELDS = ["delay", "abort"] as const;
export const FAULT_DELAY_FIELDS = ["fixedDelay", "percent"] as const;
export const FAULT_ABORT_FIELDS = ["httpStatus", "percent"] as const;

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
  const httpStatus = c.integer([...path, "httpStatus"], raw.httpStatus, {
    required: true,
    min: 200,
    max: 599,
  });
  const percent = percentField(c, [...path, "percent"], raw.percent);
  return httpStatus === undefined ? undefined : compact({ httpStatus, percent });
}
