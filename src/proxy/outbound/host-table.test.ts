import { test } from "node:test";
import assert from "node:assert/strict";
import { HostTable } from "./host-table.ts";
import type { OutboundService } from "../../model/snapshot.ts";

function svc(name: string, namespace: string, port: number, hosts: string[] = []): OutboundService {
  return { name, namespace, hosts, port, protocol: "http", routes: [] };
}

const reviews = svc("reviews", "default", 9080, ["reviews", "reviews.default"]);
const ratingsProd = svc("ratings", "prod", 9080);
const ratingsDefault = svc("ratings", "default", 9080);
const anyPort = svc("legacy", "default", 0);
const table = HostTable.build(
  [reviews, ratingsProd, ratingsDefault, anyPort].map((s) => ({
    service: s,
    value: `${s.name}.${s.namespace}`,
  })),
  "prod",
);

test("every Kubernetes-style spelling resolves, with or without the port", () => {
  for (const h of [
    "reviews",
    "reviews:9080",
    "reviews:80",
    "reviews.default",
    "reviews.default:9080",
    "reviews.default.svc",
    "reviews.default.svc.cluster.local",
    "reviews.default.svc.cluster.local:9080",
    "Reviews.Default.SVC.cluster.local",
    "reviews.default.svc.cluster.local.",
  ]) {
    assert.equal(table.get(h), "reviews.default", h);
  }
});

test("a bare name means the proxy's own namespace first", () => {
  assert.equal(table.get("ratings"), "ratings.prod");
  assert.equal(table.get("ratings.default"), "ratings.default");
  assert.equal(table.get("ratings.prod:9080"), "ratings.prod");
});

test("a declared port must match; an undeclared one accepts any", () => {
  assert.equal(table.get("reviews:1234"), undefined);
  assert.match(table.explainMiss("reviews:1234"), /declares port 9080/);
  assert.equal(table.get("legacy:7777"), "legacy.default");
  assert.equal(table.get("legacy.default.svc.cluster.local:1"), "legacy.default");
});

test("unknown hosts miss with a reason", () => {
  assert.equal(table.get("example.com"), undefined);
  assert.equal(table.get("[::1]:80"), undefined);
  assert.match(table.explainMiss("example.com"), /not a mesh service/);
});
