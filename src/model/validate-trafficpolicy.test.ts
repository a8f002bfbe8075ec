import { test } from "node:test";
import assert from "node:assert/strict";
import { validateManifests } from "./validate.ts";
import { formatViolation } from "./violation.ts";

const doc = (name: string, spec: string) =>
  `apiVersion: weft.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: ${name}}\nspec:\n${spec}`;
const lines = (...docs: string[]) =>
  validateManifests(docs.join("---\n"), "tp.yaml").violations.map(formatViolation);

test("a TrafficPolicy with every field is stored exactly as written (defaults apply at compile time)", () => {
  const text = `apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: reviews, namespace: shop}
spec:
  targetRef: {group: "", kind: Service, name: reviews}
  loadBalancer: {type: RingHash, hash: {cookie: session}, tableSize: 4096}
  locality: {enabled: true, minHealthyPercent: 80}
  connectionPool: {maxConnections: 100, maxPendingRequests: 50, maxRequests: 1000, maxRetries: 3}
  outlierDetection: {consecutiveFailures: 3, consecutiveGatewayErrors: 0, baseEjectionTime: 10s, maxEjectionTime: 2m, maxEjectionPercent: 50}
  slowStart: 30s
  retryBudget: {percent: 12.5, minRetriesPerSecond: 0}
  healthCheck: {http: {path: /healthz, expectedStatuses: [200, 204]}, interval: 2s, timeout: 500ms, healthyThreshold: 1, unhealthyThreshold: 2}
  rateLimit: {requestsPerSecond: 0.5, burst: 5, perSource: true}
`;
  const { resources, violations } = validateManifests(text, "tp.yaml");
  assert.deepEqual(violations, []);
  assert.deepEqual(resources[0].spec, {
    targetRef: { group: "", kind: "Service", name: "reviews" },
    loadBalancer: { type: "RingHash", hash: { cookie: "session" }, tableSize: 4096 },
    locality: { enabled: true, minHealthyPercent: 80 },
    connectionPool: { maxConnections: 100, maxPendingRequests: 50, maxRequests: 1000, maxRetries: 3 },
    outlierDetection: {
      consecutiveFailures: 3,
      consecutiveGatewayErrors: 0,
      baseEjectionTime: "10s",
      maxEjectionTime: "2m",
      maxEjectionPercent: 50,
    },
    slowStart: "30s",
    retryBudget: { percent: 12.5, minRetriesPerSecond: 0 },
    healthCheck: {
      http: { path: "/healthz", expectedStatuses: [200, 204] },
      interval: "2s",
      timeout: "500ms",
      healthyThreshold: 1,
      unhealthyThreshold: 2,
    },
    rateLimit: { requestsPerSecond: 0.5, burst: 5, perSource: true },
  });
  // The smallest policy: a target and nothing else.
  const min = validateManifests(doc("m", "  targetRef: {kind: Service, name: a}\n"), "tp.yaml");
  assert.deepEqual(min.violations, []);
  assert.deepEqual(min.resources[0].spec, { targetRef: { group: "", kind: "Service", name: "a" } });
});

test("targetRef must name a Service, with kind written out", () => {
  assert.deepEqual(
    lines(
      doc("a", "  targetRef: {group: apps, name: Reviews}\n"),
      doc("b", "  targetRef: {kind: HTTPRoute, name: r}\n  loadBalancer: {type: leastRequest}\n"),
      doc("c", "  loadBalancer: {type: Maglev, tableSize: 65536}\n"),
    ),
    [
      "tp.yaml:5:3: spec.targetRef.kind: is required",
      'tp.yaml:5:22: spec.targetRef.group: must be "" (the core group, where Service lives) (got "apps")',
      'tp.yaml:5:34: spec.targetRef.name: must be lowercase (a DNS-1123 label) (got "Reviews")',
      'tp.yaml:11:21: spec.targetRef.kind: must be "Service": a TrafficPolicy shapes the traffic of one Service (got "HTTPRoute")',
      'tp.yaml:12:24: spec.loadBalancer.type: must be one of "RoundRobin", "Random", "LeastRequest", "PeakEWMA", "RingHash", "Maglev" (got "leastRequest"); did you mean "LeastRequest"?',
      "tp.yaml:17:1: spec.targetRef: is required",
      "tp.yaml:18:3: spec.loadBalancer.hash: is required for type Maglev: say what to hash (header, cookie or sourceAddress)",
      "tp.yaml:18:43: spec.loadBalancer.tableSize: must be a prime number for Maglev, e.g. 65537 (got 65536)",
    ],
  );
});

test("hash and tableSize belong to consistent hashing only; exactly one hash source", () => {
  const target = (n: string) => `  targetRef: {kind: Service, name: ${n}}\n`;
  assert.deepEqual(
    lines(
      // no type: the default, LeastRequest, does not hash
      doc("a", `${target("a")}  loadBalancer: {hash: {header: x-user}, tableSize: 7}\n`),
      doc(
        "b",
        `${target("b")}  loadBalancer: {type: RingHash, hash: {sourceAddress: false}, tableSize: 0}\n`,
      ),
      doc("c", `${target("c")}  loadBalancer: {type: Maglev, hash: {header: "x user", cookie: sid}}\n`),
    ),
    [
      "tp.yaml:6:18: spec.loadBalancer.hash: is only for type RingHash or Maglev (consistent hashing); type LeastRequest does not hash",
      "tp.yaml:6:42: spec.loadBalancer.tableSize: is only for type RingHash or Maglev (consistent hashing); type LeastRequest does not hash",
      "tp.yaml:13:40: spec.loadBalancer.hash: must set exactly one of header, cookie, sourceAddress",
      "tp.yaml:13:75: spec.loadBalancer.tableSize: must be an integer between 1 and 8388608 (got 0)",
      "tp.yaml:20:38: spec.loadBalancer.hash: must set exactly one of header, cookie, sourceAddress (got header and cookie)",
      'tp.yaml:20:47: spec.loadBalancer.hash.header: must be an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~) (got "x user")',
    ],
  );
  // A prime Maglev table and any positive RingHash size are fine; RoundRobin takes neither.
  assert.deepEqual(
    lines(
      doc("d", `${target("d")}  loadBalancer: {type: Maglev, hash: {sourceAddress: true}, tableSize: 251}\n`),
      doc("e", `${target("e")}  loadBalancer: {type: RingHash, hash: {header: x-user}, tableSize: 1}\n`),
      doc("f", `${target("f")}  loadBalancer: {type: RoundRobin}\n`),
    ),
    [],
  );
});

test("percents are 0–100, counts positive, durations valid, ejection times ordered", () => {
  assert.deepEqual(
    lines(
      doc(
        "d",
        `  targetRef: {kind: Service, name: d}
  locality: {enabled: "true", minHealthyPercent: 101}
  connectionPool: {maxConnections: 0, maxRequests: 1.5}
  outlierDetection: {consecutiveFailures: 0, consecutiveGatewayErrors: -1, baseEjectionTime: 0s, maxEjectionTime: 10s, maxEjectionPercent: -5}
  slowStart: 30
  retryBudget: {percent: 120}
`,
      ),
      doc("e", "  targetRef: {kind: Service, name: e}\n  outlierDetection: {maxEjectionTime: 10s}\n"),
    ),
    [
      'tp.yaml:6:23: spec.locality.enabled: must be true or false (got string "true"; write true or false without quotes)',
      "tp.yaml:6:50: spec.locality.minHealthyPercent: must be a number between 0 and 100 (got 101)",
      "tp.yaml:7:36: spec.connectionPool.maxConnections: must be an integer between 1 and 2147483647 (got 0)",
      "tp.yaml:7:52: spec.connectionPool.maxRequests: must be an integer between 1 and 2147483647 (got 1.5)",
      "tp.yaml:8:43: spec.outlierDetection.consecutiveFailures: must be an integer between 1 and 2147483647 (got 0)",
      "tp.yaml:8:72: spec.outlierDetection.consecutiveGatewayErrors: must be an integer between 0 and 2147483647 (got -1)",
      'tp.yaml:8:94: spec.outlierDetection.baseEjectionTime: must be longer than 0 (got "0s")',
      "tp.yaml:8:140: spec.outlierDetection.maxEjectionPercent: must be a number between 0 and 100 (got -5)",
      'tp.yaml:9:14: spec.slowStart: must be a duration with a unit, such as "30s" or "30ms" (got 30)',
      "tp.yaml:10:26: spec.retryBudget.percent: must be a number between 0 and 100 (got 120)",
      // Checked against the default baseEjectionTime when none is written.
      'tp.yaml:17:39: spec.outlierDetection.maxEjectionTime: must be at least the default baseEjectionTime (30s) (got "10s")',
    ],
  );
});

test("health checks: exactly one of http and tcp, sane timing; rate limits need a positive rate", () => {
  assert.deepEqual(
    lines(
      doc(
        "e",
        `  targetRef: {kind: Service, name: e}
  healthCheck: {interval: 0s, healthyThreshold: 0, http: {expectedStatuses: [99, 200, 200]}}
  rateLimit: {burst: 0, perSource: 1}
`,
      ),
      doc(
        "f",
        "  targetRef: {kind: Service, name: f}\n  healthCheck: {http: {path: /h}, tcp: {}}\n  rateLimit: {requestsPerSecond: -1}\n",
      ),
      doc(
        "g",
        "  targetRef: {kind: Service, name: g}\n  healthCheck: {tcp: {port: 8080}, interval: 1s, timeout: 2s}\n",
      ),
      doc("h", "  targetRef: {kind: Service, name: h}\n  healthCheck: {interval: 1s}\n"),
    ),
    [
      'tp.yaml:6:27: spec.healthCheck.interval: must be longer than 0 (got "0s")',
      "tp.yaml:6:49: spec.healthCheck.healthyThreshold: must be an integer between 1 and 2147483647 (got 0)",
      "tp.yaml:6:78: spec.healthCheck.http.expectedStatuses[0]: must be an integer between 100 and 599 (got 99)",
      "tp.yaml:6:87: spec.healthCheck.http.expectedStatuses[2]: duplicate 200 (also spec.healthCheck.http.expectedStatuses[1])",
      "tp.yaml:7:3: spec.rateLimit.requestsPerSecond: is required",
      "tp.yaml:7:22: spec.rateLimit.burst: must be an integer between 1 and 2147483647 (got 0)",
      "tp.yaml:7:36: spec.rateLimit.perSource: must be true or false (got number 1)",
      "tp.yaml:14:16: spec.healthCheck: must set exactly one of http, tcp (got http and tcp)",
      "tp.yaml:15:34: spec.rateLimit.requestsPerSecond: must be a number greater than 0 and at most 1000000000 (got -1)",
      "tp.yaml:22:22: spec.healthCheck.tcp: must be empty ({}): a TCP check only opens a connection to the app's port",
      'tp.yaml:22:59: spec.healthCheck.timeout: must not be longer than interval (1s): a check must end before the next one starts (got "2s")',
      "tp.yaml:29:16: spec.healthCheck: must set exactly one of http, tcp",
    ],
  );
});
