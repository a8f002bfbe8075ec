import { test } from "node:test";
import assert from "node:assert/strict";
import type { StringRule } from "./checker.ts";
import {
  dnsLabel,
  dnsSubdomain,
  headerName,
  ipOrHostname,
  labelKey,
  labelValue,
  regularExpression,
  routeHostname,
  sectionName,
  spiffeId,
  trustDomain,
} from "./names.ts";

function accepts(rule: StringRule, ...values: string[]) {
  for (const v of values) assert.equal(rule(v), undefined, `should accept ${JSON.stringify(v)}`);
}
function rejects(rule: StringRule, ...values: string[]) {
  for (const v of values) assert.equal(typeof rule(v), "string", `should reject ${JSON.stringify(v)}`);
}

test("DNS-1123 labels", () => {
  accepts(dnsLabel, "a", "reviews", "reviews-v2", "0abc", "a".repeat(63));
  rejects(dnsLabel, "", "-a", "a-", "a.b", "a_b", "a".repeat(64));
  assert.match(dnsLabel("Reviews")!, /lowercase/);
  assert.match(dnsLabel("a".repeat(64))!, /at most 63/);
});

test("DNS-1123 subdomains and section names", () => {
  accepts(dnsSubdomain, "reviews", "reviews.canary", "a.b-c.d");
  rejects(dnsSubdomain, "", "a..b", ".a", "a.", "A.b", `${"a".repeat(250)}.bcd`);
  accepts(sectionName, "canary", "a".repeat(200));
  rejects(sectionName, "a.b", "Canary", "a".repeat(254));
});

test("label keys and values follow Kubernetes", () => {
  accepts(labelKey, "version", "weft.dev/service", "app.kubernetes.io/name", "A_b.c", "a".repeat(63));
  rejects(labelKey, "", "/a", "weft.dev/", "Weft.dev/a", "a/b/c", "-a", "a".repeat(64), "a b");
  accepts(labelValue, "", "v2", "1.0", "A_b-c.d");
  rejects(labelValue, "-v2", "v2.", "a b", "a".repeat(64));
});

test("addresses: IP literals or host names, no brackets or ports", () => {
  accepts(ipOrHostname, "10.0.0.7", "::1", "fe80::1", "db.internal", "localhost", "Host-1.Example.com");
  rejects(ipOrHostname, "", "10.0.0.7:80", "[::1]", "a..b", "under_score.example", "-a.example");
  assert.match(ipOrHostname("[::1]")!, /without brackets/);
  assert.match(ipOrHostname("db:5432")!, /without a port/);
});

test("route hostnames allow one leading wildcard, not IPs", () => {
  accepts(routeHostname, "reviews", "reviews.default.svc.cluster.local", "*.example.com");
  rejects(routeHostname, "10.0.0.1", "*", "a.*.com", "Example.com");
});

test("trust domains and SPIFFE IDs", () => {
  accepts(trustDomain, "weft.local", "prod.example.com", "my_domain");
  rejects(trustDomain, "spiffe://weft.local", "Weft.local", "weft.local:443", "a..b");
  accepts(spiffeId, "spiffe://weft.local/ns/default/sa/reviews", "spiffe://example.org/x");
  rejects(
    spiffeId,
    "https://weft.local/ns/a",
    "spiffe://weft.local",
    "spiffe://weft.local/",
    "spiffe://Weft.local/a",
    "spiffe://weft.local:8443/a",
    "spiffe://user@weft.local/a",
    "spiffe://weft.local/a//b",
    "spiffe://weft.local/a/../b",
    "spiffe://weft.local/a?x=1",
  );
});

test("header names and regular expressions", () => {
  accepts(headerName, "x-user", "Content-Type", "x_a!#");
  rejects(headerName, "", "x user", "x:y", "a".repeat(257));
  accepts(regularExpression, "^/api/v[0-9]+$", ".*");
  assert.equal(regularExpression("(a"), "must be a valid regular expression: Unterminated group");
});
