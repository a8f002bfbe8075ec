import { test } from "node:test";
import assert from "node:assert/strict";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const HEAD = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rules:
`;
const lines = (rules: string) =>
  validateManifests(HEAD + rules, "route.yaml").violations.map(formatViolation);

test("timeouts and retry are stored as written: weft's own defaults are applied when compiling", () => {
  const { resources, violations } = validateManifests(
    `${HEAD}  - timeouts: {request: 10s, backendRequest: 2s}
    retry:
      attempts: 3
      codes: [503]
      backoff: 50ms
      on: [connect-failure, timeout]
      maxBackoff: 1s
      nonIdempotent: true
      hedge: {delay: 150ms, maxHedges: 2}
  - timeouts: {request: 0s, backendRequest: 1m}
    retry: {hedge: {delay: 1s}}
`,
    "route.yaml",
  );
  assert.deepEqual(violations, []);
  const rules = (resources[0].spec as { rules: object[] }).rules;
  assert.deepEqual(rules, [
    {
      timeouts: { request: "10s", backendRequest: "2s" },
      retry: {
        attempts: 3,
        codes: [503],
        backoff: "50ms",
        on: ["connect-failure", "timeout"],
        maxBackoff: "1s",
        nonIdempotent: true,
        hedge: { delay: "150ms", maxHedges: 2 },
      },
    },
    // request "0s" disables the overall timeout, so any backendRequest fits in it.
    { timeouts: { request: "0s", backendRequest: "1m" }, retry: { hedge: { delay: "1s" } } },
  ]);
});

test("a backend request may not outlast the whole request", () => {
  assert.deepEqual(lines("  - timeouts: {request: 1s, backendRequest: 1500ms}\n"), [
    'route.yaml:7:45: spec.rules[0].timeouts.backendRequest: must not be longer than spec.rules[0].timeouts.request (1s): each attempt is part of the whole request (got "1500ms")',
  ]);
  assert.deepEqual(lines("  - timeouts: {request: 1s, backendRequest: 1000ms}\n"), []);
});

test("durations, retry ranges, codes, conditions and hedging are checked with positions", () => {
  assert.deepEqual(
    lines(`  - timeouts: {request: 1.5s, backendRequest: 10}
    retry: {attempts: 11, codes: [200, 503, 503], on: [5xx, bogus, 5xx], maxBackoff: 10ms, nonIdempotent: "yes", hedge: {maxHedges: 0}}
  - retry: {attempts: -1, backoff: 1s, maxBackoff: 999ms, hedge: {delay: 0s}}
  - retryPolicy: {}
    sessionPersistence: {}
`),
    [
      'route.yaml:7:25: spec.rules[0].timeouts.request: must be a duration such as "500ms", "10s" or "1m30s" (up to four parts of 1–5 digits, each followed by h, m, s or ms) (got "1.5s")',
      'route.yaml:7:47: spec.rules[0].timeouts.backendRequest: must be a duration with a unit, such as "10s" or "10ms" (got 10)',
      "route.yaml:8:23: spec.rules[0].retry.attempts: must be an integer between 0 and 10 (got 11)",
      "route.yaml:8:35: spec.rules[0].retry.codes[0]: must be an integer between 400 and 599 (got 200)",
      "route.yaml:8:45: spec.rules[0].retry.codes[2]: duplicate 503 (also spec.rules[0].retry.codes[1])",
      'route.yaml:8:61: spec.rules[0].retry.on[1]: must be one of "5xx", "gateway-error", "connect-failure", "reset", "timeout" (got "bogus")',
      'route.yaml:8:68: spec.rules[0].retry.on[2]: duplicate "5xx" (also spec.rules[0].retry.on[0])',
      'route.yaml:8:86: spec.rules[0].retry.maxBackoff: must be at least the default backoff (25ms): it caps the growing delay (got "10ms")',
      'route.yaml:8:107: spec.rules[0].retry.nonIdempotent: must be true or false (got string "yes"; write true or false without quotes)',
      "route.yaml:8:114: spec.rules[0].retry.hedge.delay: is required",
      "route.yaml:8:133: spec.rules[0].retry.hedge.maxHedges: must be an integer between 1 and 3 (got 0)",
      "route.yaml:9:23: spec.rules[1].retry.attempts: must be an integer between 0 and 10 (got -1)",
      'route.yaml:9:52: spec.rules[1].retry.maxBackoff: must be at least backoff (1s): it caps the growing delay (got "999ms")',
      'route.yaml:9:74: spec.rules[1].retry.hedge.delay: must be longer than 0 (got "0s")',
      'route.yaml:10:5: spec.rules[2].retryPolicy: unknown field "retryPolicy" (known fields: name, matches, filters, backendRefs, timeouts, retry)',
      'route.yaml:11:5: spec.rules[2].sessionPersistence: field "sessionPersistence" is not supported by weft yet',
    ],
  );
  // The bounds themselves are accepted.
  assert.deepEqual(
    lines(
      "  - retry: {attempts: 0, codes: [400, 599], hedge: {delay: 1ms, maxHedges: 3}}\n  - retry: {attempts: 10}\n",
    ),
    [],
  );
});
