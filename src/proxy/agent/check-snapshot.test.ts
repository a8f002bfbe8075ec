import assert from "node:assert/strict";
import { test } from "node:test";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { checkSnapshot } from "./check-snapshot.ts";

const good = (): ProxySnapshot => ({
  version: "v1",
  proxy: {
    service: "web",
    namespace: "default",
    identity: "spiffe://weft.local/ns/default/sa/web",
    workload: "web-1",
  },
  mesh: { trustDomain: "weft.local", mtlsMode: "STRICT" },
  inbound: { appAddress: "127.0.0.1", appPort: 8080 },
  outbound: {
    "api.default": {
      name: "api",
      namespace: "default",
      hosts: ["api"],
      port: 0,
      protocol: "http",
      routes: [
        {
          name: "default",
          matches: [{ path: { type: "RegularExpression", value: "^/v[0-9]+/" } }],
          backends: [{ cluster: "api.default", weight: 1 }],
        },
      ],
    },
  },
  clusters: { "api.default": { name: "api.default", service: "api", namespace: "default", endpoints: [] } },
});

test("a consistent snapshot passes", () => {
  assert.equal(checkSnapshot(good()), undefined);
});

test("what a proxy NACKs: a missing cluster, a bad regular expression, a missing section", () => {
  const s1 = good();
  s1.outbound["api.default"].routes[0].backends[0].cluster = "nope.default";
  assert.match(checkSnapshot(s1)!, /unknown cluster nope\.default/);
  const s2 = good();
  s2.outbound["api.default"].routes[0].matches[0].path!.value = "([";
  assert.match(checkSnapshot(s2)!, /bad regular expression/);
  const s3 = good() as Partial<ProxySnapshot>;
  delete s3.clusters;
  assert.match(checkSnapshot(s3 as ProxySnapshot)!, /missing a section/);
  assert.match(checkSnapshot({ ...good(), version: "" })!, /version/);
});

test("inbound ports must each name a port, an app port and a protocol", () => {
  const s = good();
  s.inbound.ports = [{ port: 5432, appPort: 15432, protocol: "tcp" }];
  assert.equal(checkSnapshot(s), undefined);
  s.inbound.ports = [{ port: 5432 } as never];
  assert.match(checkSnapshot(s)!, /inbound\.ports\[0\] needs port, appPort and protocol/);
});
