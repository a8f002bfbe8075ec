import { test } from "node:test";
import assert from "node:assert/strict";
import type { AnyResource } from "../../model/resources.ts";
import { normalizeKind } from "../../model/resources.ts";
import { table } from "./get.ts";

const meta = (name: string) => ({ name, namespace: "default" });

test("workload tables have a HEALTH column: the reported health, or - when none was reported", () => {
  const items: AnyResource[] = [
    {
      apiVersion: "weft.dev/v1alpha1",
      kind: "Workload",
      metadata: meta("reviews-1"),
      spec: { service: "reviews", address: "10.0.0.1", port: 15006 },
      status: { health: "Unhealthy", detail: "GET /healthz: 500", since: "2026-01-01T00:00:00Z" },
    },
    {
      apiVersion: "weft.dev/v1alpha1",
      kind: "Workload",
      metadata: meta("db-1"),
      spec: { service: "db", address: "10.0.0.2", port: 5432 },
    },
  ];
  const [head, first, second] = table(items).trimEnd().split("\n");
  assert.match(head, /^NAMESPACE\s+NAME\s+HEALTH\s+DETAILS\s+AGE$/);
  assert.match(first, /^default\s+reviews-1\s+Unhealthy\s+service=reviews /);
  assert.match(second, /^default\s+db-1\s+-\s+service=db /);
});

test("a workload its sidecar keeps out of the endpoints shows NotServing", () => {
  const w = (name: string, status: Record<string, unknown>): AnyResource => ({
    apiVersion: "weft.dev/v1alpha1",
    kind: "Workload",
    metadata: meta(name),
    spec: { service: "api", address: "10.0.0.3", port: 15006 },
    status,
  });
  const [, starting, draining] = table([
    w("api-1", { serving: false }),
    w("api-2", { serving: false, health: "Unhealthy", since: "2026-01-01T00:00:00Z" }),
  ])
    .trimEnd()
    .split("\n");
  assert.match(starting, /^default\s+api-1\s+NotServing\s+service=api /);
  assert.match(draining, /^default\s+api-2\s+Unhealthy,NotServing\s+service=api /);
});

test("traffic policies and fault injections are summarised; other kinds have no HEALTH column", () => {
  const out = table([
    {
      apiVersion: "weft.dev/v1alpha1",
      kind: "TrafficPolicy",
      metadata: meta("reviews"),
      spec: {
        targetRef: { kind: "Service", name: "reviews" },
        loadBalancer: { type: "RingHash", hash: { header: "x-user" } },
        rateLimit: { requestsPerSecond: 50 },
        healthCheck: { http: { path: "/healthz" } },
        outlierDetection: {},
        retryBudget: {},
      },
    },
    {
      apiVersion: "weft.dev/v1alpha1",
      kind: "TrafficPolicy",
      metadata: meta("ratings"),
      spec: { targetRef: { kind: "Service", name: "ratings" }, loadBalancer: {}, healthCheck: { tcp: {} } },
    },
  ]);
  assert.doesNotMatch(out, /HEALTH/);
  assert.match(
    out,
    /reviews\s+target=reviews lb=RingHash rateLimit=50\/s healthCheck=http:\/healthz outlierDetection,retryBudget/,
  );
  assert.match(out, /ratings\s+target=ratings lb=LeastRequest healthCheck=tcp/);
  const faults = table([
    {
      apiVersion: "weft.dev/v1alpha1",
      kind: "FaultInjection",
      metadata: meta("flaky"),
      spec: { delay: { fixedDelay: "2s", percent: 10 }, abort: { httpStatus: 503 } },
    },
  ]);
  assert.match(faults, /flaky\s+delay=2s@10% abort=503@100%/);
});

test("weft get accepts the new kinds' plurals and short names", () => {
  for (const s of ["trafficpolicies", "TrafficPolicy", "tp", "tps"])
    assert.equal(normalizeKind(s), "TrafficPolicy", s);
  for (const s of ["faultinjections", "FaultInjection", "fault", "faults"])
    assert.equal(normalizeKind(s), "FaultInjection", s);
  assert.equal(normalizeKind("services"), "Service");
});

test("route tables have a STATUS column: OK, the reasons of False conditions, or - without a status", () => {
  const route = (name: string, status?: Record<string, unknown>): AnyResource => ({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: meta(name),
    spec: { parentRefs: [{ name: "reviews" }], rules: [{}] },
    ...(status ? { status } : {}),
  });
  const cond = (type: string, status: string, reason: string) => ({ type, status, reason, message: "" });
  const [head, ok, broken, none] = table([
    route("ok", {
      parents: [
        { conditions: [cond("Accepted", "True", "Accepted"), cond("ResolvedRefs", "True", "ResolvedRefs")] },
      ],
    }),
    route("broken", {
      parents: [
        {
          conditions: [
            cond("Accepted", "True", "Accepted"),
            cond("ResolvedRefs", "False", "BackendNotFound"),
          ],
        },
        {
          conditions: [
            cond("Accepted", "False", "NoMatchingParent"),
            cond("ResolvedRefs", "False", "BackendNotFound"),
          ],
        },
      ],
    }),
    route("none"),
  ])
    .trimEnd()
    .split("\n");
  assert.match(head, /^NAMESPACE\s+NAME\s+STATUS\s+DETAILS\s+AGE$/);
  assert.match(ok, /^default\s+ok\s+OK\s+parents=reviews rules=1/);
  assert.match(broken, /^default\s+broken\s+BackendNotFound,NoMatchingParent\s+parents=reviews/);
  assert.match(none, /^default\s+none\s+-\s+parents=reviews/);
});
