// The snapshot consistency check on what the compiler produces (every golden snapshot passes) and on
// hostile values: missing sections, wrong types, references to clusters that are not there (including
// names that only an object's prototype has), regular expressions that do not compile, huge and deep
// values — every violation named with its path, none of it throwing, the report bounded.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { ProxySnapshot } from "./snapshot.ts";
import { describeViolations, MAX_SNAPSHOT_VIOLATIONS, snapshotViolations } from "./snapshot-consistency.ts";

const GOLDEN = join(import.meta.dirname, "../control-plane/compile/testdata");

function golden(name: string): ProxySnapshot {
  return JSON.parse(readFileSync(join(GOLDEN, name), "utf8")) as ProxySnapshot;
}

/** A compiled snapshot with routes, mirrors, retries and policies to break. */
const base = () => golden("route-filters.golden.json");
const paths = (s: unknown) => snapshotViolations(s).violations.map((v) => v.path);

test("every snapshot the compiler's golden files hold is consistent", () => {
  const files = readdirSync(GOLDEN).filter((f) => f.endsWith(".golden.json"));
  assert.ok(files.length >= 5);
  for (const f of files) assert.deepEqual(snapshotViolations(golden(f)), { violations: [], more: 0 }, f);
});

test("not an object, or every section missing: each missing section is named", () => {
  for (const v of [null, "snapshot", 42, [], undefined])
    assert.deepEqual(paths(v), ["snapshot"], `for ${JSON.stringify(v)}`);
  assert.deepEqual(paths({}), ["version", "proxy", "mesh", "inbound", "clusters", "outbound"]);
  const { violations } = snapshotViolations({});
  assert.equal(violations[0].message, "is missing");
});

test("wrong types and out-of-range values are reported at their paths", () => {
  const s = base() as unknown as Record<string, Record<string, unknown>>;
  s.inbound.appPort = "8080";
  s.mesh.mtlsMode = "LOOSE";
  const [svc] = Object.keys(s.outbound);
  (s.outbound[svc] as Record<string, unknown>).port = 70_000;
  (s.outbound[svc] as Record<string, unknown>).hosts = "reviews";
  const r = snapshotViolations(s);
  assert.deepEqual(
    r.violations.map((v) => v.path),
    ["mesh.mtlsMode", "inbound.appPort", `outbound["${svc}"].hosts`, `outbound["${svc}"].port`],
  );
  assert.match(
    describeViolations(r),
    /inbound\.appPort: must be an integer between 1 and 65535 \(got "8080"\)/,
  );
});

test("a route's backend or mirror naming a missing cluster — even one only Object.prototype has", () => {
  const s = base();
  const route = Object.values(s.outbound)
    .flatMap((o) => o.routes)
    .find((r) => r.backends.length > 0 && !r.mirrors);
  assert.ok(route);
  route.backends[0].cluster = "nope.default";
  route.backends.push({ cluster: "constructor", weight: 1 });
  route.mirrors = [{ cluster: "__proto__", percent: 10 }];
  const messages = snapshotViolations(s).violations.map((v) => `${v.path}: ${v.message}`);
  assert.equal(messages.length, 3, messages.join("\n"));
  assert.match(messages[0], /backends\[0\]\.cluster: names cluster "nope\.default", which the snapshot/);
  assert.match(messages[1], /backends\[\d\]\.cluster: names cluster "constructor"/);
  assert.match(messages[2], /mirrors\[0\]\.cluster: names cluster "__proto__"/);
});

test("sections known to be consistent are not walked again, but their cluster references still are", () => {
  const s = base();
  const known = new WeakSet<object>([...Object.values(s.outbound), ...Object.values(s.clusters)]);
  assert.deepEqual(snapshotViolations(s, known).violations, []);
  // A known service in a snapshot without the clusters it names: still reported, at the same paths.
  const withoutClusters = { ...s, clusters: {} };
  assert.deepEqual(paths(withoutClusters), [
    ...snapshotViolations(withoutClusters, known).violations.map((v) => v.path),
  ]);
  assert.ok(snapshotViolations(withoutClusters, known).violations.length > 0);
  // A known cluster under another key is checked in full (its name must be its key).
  const [name, cluster] = Object.entries(s.clusters)[0];
  const renamed = { ...s, clusters: { ...s.clusters, [`x${name}`]: cluster } };
  assert.deepEqual(
    snapshotViolations(renamed, known).violations.map((v) => v.path),
    [`clusters["x${name}"].name`],
  );
  // Shape is what `known` skips: a section not in it is walked (a broken copy is caught).
  const [svcKey, svc] = Object.entries(s.outbound)[0];
  const broken = { ...s, outbound: { ...s.outbound, [svcKey]: { ...svc, port: -1 } } };
  assert.deepEqual(
    snapshotViolations(broken, known).violations.map((v) => v.path),
    [`outbound["${svcKey}"].port`],
  );
});

test("regular expressions are compiled as the proxy compiles them (anchored)", () => {
  const s = base();
  const route = Object.values(s.outbound)[0].routes[0];
  route.matches = [
    { path: { type: "RegularExpression", value: "([" } },
    { headers: [{ type: "RegularExpression", name: "x-user", value: "a)|(b" }] },
    { path: { type: "RegularExpression", value: "^/v[0-9]+/.*" } },
  ];
  const r = snapshotViolations(s);
  assert.deepEqual(
    r.violations.map((v) => v.path.replace(/^.*routes\[0\]\./, "")),
    ["matches[0].path.value", "matches[1].headers[0].value"],
  );
  assert.match(r.violations[0].message, /is not a valid regular expression/);
});

test("endpoints need an address and a port; consistent-hash tables a size the balancer can build", () => {
  const s = base();
  const cluster = Object.values(s.clusters)[0];
  const ep = cluster.endpoints[0] as unknown as Record<string, unknown>;
  delete ep.address;
  ep.port = 0;
  cluster.policy = { loadBalancer: { type: "Maglev", hashOn: { header: "x-user" }, tableSize: 65_536 } };
  const name = JSON.stringify(cluster.name);
  assert.deepEqual(paths(s), [
    `clusters[${name}].endpoints[0].address`,
    `clusters[${name}].endpoints[0].port`,
    `clusters[${name}].policy.loadBalancer.tableSize`,
  ]);
  cluster.endpoints = [];
  cluster.policy = {
    loadBalancer: { type: "RingHash", hashOn: { header: "a", cookie: "b" }, tableSize: 2 ** 40 },
  };
  assert.deepEqual(paths(s), [
    `clusters[${name}].policy.loadBalancer.hashOn`,
    `clusters[${name}].policy.loadBalancer.tableSize`,
  ]);
});

test("huge and deep values: one pass, a bounded report, no throw", () => {
  const s = base();
  const cluster = Object.values(s.clusters)[0];
  cluster.endpoints = Array.from({ length: 200_000 }, () => ({ port: -1 }) as never);
  let deep: unknown = "leaf";
  for (let i = 0; i < 100_000; i++) deep = [deep];
  Object.values(s.outbound)[0].routes[0].matches = [deep as never];
  (cluster.endpoints as unknown[]).unshift({
    address: "127.0.0.1",
    port: 1,
    workload: "w",
    labels: { a: { b: deep } },
  });
  const started = process.hrtime.bigint();
  const r = snapshotViolations(s);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.equal(r.violations.length, MAX_SNAPSHOT_VIOLATIONS);
  assert.ok(r.more > 400_000, `the rest counted: ${r.more}`);
  assert.ok(ms < 2000, `checked in ${ms} ms`);
  assert.match(r.violations[0].message, /must be a string \(got an object\)/);
  const line = describeViolations(r);
  assert.match(line, /\(and \d+ more\)$/);
  assert.ok(line.length < 2000, "the one-line summary stays short");
});

test("long keys and values are cut short in the report", () => {
  const s = base();
  const long = "x".repeat(100_000);
  s.clusters[long] = { ...Object.values(s.clusters)[0], name: "other" };
  s.version = long;
  const line = describeViolations(snapshotViolations(s));
  assert.ok(line.length < 2000, `${line.length}: ${line}`);
  assert.match(line, /^version: must be a non-empty string of at most 128 characters \(got "x+\.\.\.\)/);
});

test("inbound ports each need a port, an app port and a known protocol", () => {
  const s = base();
  s.inbound.ports = [{ port: 5432, appPort: 15432, protocol: "tcp" }];
  assert.deepEqual(paths(s), []);
  s.inbound.ports = [{ port: 5432 } as never, { port: 80, appPort: 8080, protocol: "smtp" as never }];
  assert.deepEqual(paths(s), [
    "inbound.ports[0].appPort",
    "inbound.ports[0].protocol",
    "inbound.ports[1].protocol",
  ]);
});
