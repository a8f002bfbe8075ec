import { test } from "node:test";
import assert from "node:assert/strict";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const HEAD = "apiVersion: weft.dev/v1alpha1\nkind: FaultInjection\n";
const lines = (text: string) => validateManifests(text, "fault.yaml").violations.map(formatViolation);

test("a FaultInjection delays, aborts or both; percent is stored only when written", () => {
  const { resources, violations } = validateManifests(
    `${HEAD}metadata: {name: flaky, namespace: shop}
spec:
  delay: {fixedDelay: 1500ms, percent: 10}
  abort: {httpStatus: 503, percent: 0.5}
---
${HEAD}metadata: {name: down}
spec:
  abort: {httpStatus: 200}
`,
    "fault.yaml",
  );
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0].spec, {
    delay: { fixedDelay: "1500ms", percent: 10 },
    abort: { httpStatus: 503, percent: 0.5 },
  });
  assert.deepEqual(resources[1].spec, { abort: { httpStatus: 200 } });
});

test("at least one fault; statuses 200–599; percents 0–100; a delay needs its duration", () => {
  assert.deepEqual(
    lines(`${HEAD}metadata: {name: a}
spec: {}
---
${HEAD}metadata: {name: b}
spec:
  delay: {percent: 150}
  abort: {httpStatus: 199, percent: -1}
---
${HEAD}metadata: {name: c}
spec:
  delay: {fixedDelay: 2}
  abort: {httpStatus: "503"}
  aborts: {}
---
${HEAD}metadata: {name: d}
`),
    [
      "fault.yaml:4:7: spec: must set delay, abort or both",
      "fault.yaml:10:3: spec.delay.fixedDelay: is required",
      "fault.yaml:10:20: spec.delay.percent: must be a number between 0 and 100 (got 150)",
      "fault.yaml:11:23: spec.abort.httpStatus: must be an integer between 200 and 599 (got 199)",
      "fault.yaml:11:37: spec.abort.percent: must be a number between 0 and 100 (got -1)",
      'fault.yaml:17:23: spec.delay.fixedDelay: must be a duration with a unit, such as "2s" or "2ms" (got 2)',
      'fault.yaml:18:23: spec.abort.httpStatus: must be an integer between 200 and 599 (got "503")',
      'fault.yaml:19:3: spec.aborts: unknown field "aborts"; did you mean "abort"?',
      "fault.yaml:21:1: spec: is required",
    ],
  );
});

test("an abort may answer with a gRPC status by name, instead of an HTTP status", () => {
  const { resources, violations } = validateManifests(
    `${HEAD}metadata: {name: grpc-down}
spec:
  abort: {grpcStatus: UNAVAILABLE, percent: 50}
`,
    "fault.yaml",
  );
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0].spec, { abort: { grpcStatus: "UNAVAILABLE", percent: 50 } });
});

test("an abort sets exactly one of httpStatus and grpcStatus; grpcStatus is a known name", () => {
  assert.deepEqual(
    lines(`${HEAD}metadata: {name: a}
spec:
  abort: {percent: 10}
---
${HEAD}metadata: {name: b}
spec:
  abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}
---
${HEAD}metadata: {name: c}
spec:
  abort: {grpcStatus: UNAVAILBLE}
---
${HEAD}metadata: {name: d}
spec:
  abort: {grpcStatus: 14}
---
${HEAD}metadata: {name: e}
spec:
  abort: {grpcStatus: 42}
`),
    [
      "fault.yaml:5:10: spec.abort: must set httpStatus (e.g. 503) or grpcStatus (e.g. UNAVAILABLE)",
      "fault.yaml:11:28: spec.abort.grpcStatus: set httpStatus or grpcStatus, not both",
      'fault.yaml:17:23: spec.abort.grpcStatus: must be one of "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED" (got "UNAVAILBLE"); did you mean "UNAVAILABLE"?',
      "fault.yaml:23:23: spec.abort.grpcStatus: must be a gRPC status name: write UNAVAILABLE for 14",
      "fault.yaml:29:23: spec.abort.grpcStatus: must be a gRPC status name such as UNAVAILABLE (got 42, which is not a gRPC status)",
    ],
  );
});
