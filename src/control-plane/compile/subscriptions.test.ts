// On-demand compile: subscribed names resolve as the proxy's host table resolves hosts (bare name:
// own namespace, then default, then unique), names of nothing are `unresolved` (sorted) and change the
// version, the encoding stays JSON.stringify's, and a proxy that is not on demand is unchanged.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Service, Workload } from "../../model/resources.ts";
import { snapshotViolations } from "../../model/snapshot-consistency.ts";
import { compileSnapshot, type MeshState, type ProxyRequest } from "./compile.ts";
import { encodeSnapshot } from "./piece.ts";

function service(name: string, namespace: string): Service {
  return {
    apiVersion: "weft.dev/v1alpha1",
    kind: "Service",
    metadata: { name, namespace },
    spec: { ports: [{ port: 8080, protocol: "http" }] },
  };
}

const self: Workload = {
  apiVersion: "weft.dev/v1alpha1",
  kind: "Workload",
  metadata: { name: "web-1", namespace: "shop", labels: {} },
  spec: { service: "web", address: "127.0.0.1", port: 15006 },
};

function state(services: Service[]): MeshState {
  return {
    services,
    workloads: [self],
    routes: [],
    trafficPolicies: [],
    faultInjections: [],
    referenceGrants: [],
  };
}

const mesh = state([
  service("web", "shop"),
  service("cart", "shop"),
  service("cart", "default"),
  service("users", "default"),
  service("users", "auth"),
  service("ledger", "billing"),
  service("dup", "a"),
  service("dup", "b"),
]);

function onDemand(subscriptions: string[], reach?: string[]): ProxyRequest {
  return { workload: self, appPort: 8080, onDemand: true, subscriptions, reach };
}

test("bare names: own namespace first, then default, then the only one anywhere; else unresolved", () => {
  const s = compileSnapshot(mesh, onDemand(["cart", "users", "ledger", "dup", "nope"]));
  assert.deepEqual(Object.keys(s.outbound), ["cart.shop", "ledger.billing", "users.default"]);
  assert.deepEqual(s.unresolved, ["dup", "nope"]);
});

test("qualified names: name.ns, name.ns.svc, name.ns.svc.cluster.local; other dotted forms are unresolved", () => {
  const s = compileSnapshot(
    mesh,
    onDemand([
      "users.auth",
      "cart.default.svc",
      "ledger.billing.svc.cluster.local",
      "ledger.billing.svc.cluster",
      "example.com",
      "a.b.c",
    ]),
  );
  assert.deepEqual(Object.keys(s.outbound), ["cart.default", "ledger.billing", "users.auth"]);
  assert.deepEqual(s.unresolved, ["a.b.c", "example.com", "ledger.billing.svc.cluster"], "sorted");
  assert.deepEqual(snapshotViolations(s).violations, []);
});

test("an on-demand proxy with no subscription gets its pre-loads only; the whole mesh without onDemand", () => {
  const none = compileSnapshot(mesh, onDemand([]));
  assert.deepEqual(Object.keys(none.outbound), []);
  assert.equal(none.unresolved, undefined);
  const preloaded = compileSnapshot(mesh, onDemand([], ["users.auth"]));
  assert.deepEqual(Object.keys(preloaded.outbound), ["users.auth"]);
  const all = compileSnapshot(mesh, { workload: self, appPort: 8080 });
  assert.equal(Object.keys(all.outbound).length, 8);
  assert.equal(all.unresolved, undefined);
});

test("unresolved names are in the version and the wire encoding (byte-equal to JSON.stringify)", () => {
  const a = compileSnapshot(mesh, onDemand(["cart", "nope"]));
  const b = compileSnapshot(mesh, onDemand(["cart", "other"]));
  const c = compileSnapshot(mesh, onDemand(["cart"]));
  assert.notEqual(a.version, b.version);
  assert.notEqual(a.version, c.version);
  assert.equal(compileSnapshot(mesh, onDemand(["nope", "cart"])).version, a.version, "order-free");
  for (const s of [a, b, c]) assert.equal(encodeSnapshot(s), JSON.stringify(s));
  assert.match(encodeSnapshot(a), /,"unresolved":\["nope"\]\}$/);
});

test("the consistency check refuses an unsorted or malformed unresolved list", () => {
  const s = compileSnapshot(mesh, onDemand(["nope"]));
  const paths = (u: unknown) =>
    snapshotViolations({ ...s, unresolved: u }).violations.map((v) => `${v.path}: ${v.message}`);
  assert.deepEqual(paths(["a", "b"]), []);
  assert.match(paths(["b", "a"]).join(), /unresolved\[1\]: must be sorted/);
  assert.match(paths(["a", "a"]).join(), /unresolved\[1\]: must be sorted, without duplicates/);
  assert.match(paths(["Bad_Name"]).join(), /unresolved\[0\]: must be a lower-case host name/);
  assert.match(paths([7]).join(), /unresolved\[0\]: must be a string/);
  assert.match(paths("x").join(), /unresolved: must be a list/);
});
