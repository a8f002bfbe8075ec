// Locality-aware balancing through real sidecars: a caller prefers instances in its own zone and
// fails over to another zone when too few of its zone's instances are available.

import assert from "node:assert/strict";
import { test } from "node:test";
import { appOf, send, startControlApp } from "../helpers/control-app.ts";
import { apply, startControlPlane, startProxy, waitUntil } from "../helpers/mesh.ts";

test("a caller keeps traffic in its zone and fails over when its zone's instance is ejected", async () => {
  const cp = await startControlPlane();
  const [east, west, caller] = await Promise.all([
    startControlApp("api-east"),
    startControlApp("api-west"),
    startControlApp("caller"),
  ]);
  await Promise.all([
    startProxy(cp, "api", east.port, ["--zone", "east"]),
    startProxy(cp, "api", west.port, ["--zone", "west"]),
  ]);
  const client = await startProxy(cp, "caller", caller.port, ["--zone", "east"]);
  await apply(
    cp,
    `apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: { name: api }
spec:
  targetRef: { kind: Service, name: api }
  locality: { enabled: true, minHealthyPercent: 50 }
  outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 30s, maxEjectionPercent: 50 }
`,
  );
  // In effect once 10 requests in a row stay in the caller's zone (round robin would alternate).
  await waitUntil(
    async () => {
      for (let i = 0; i < 10; i++)
        if (appOf(await send(client.outboundPort, "http://api/")) !== "api-east") return false;
      return true;
    },
    10_000,
    "traffic to stay in zone east",
  );
  west.seen.length = 0; // probes from before the policy arrived
  for (let i = 0; i < 20; i++)
    assert.equal(appOf(await send(client.outboundPort, `http://api/${i}`)), "api-east");
  assert.equal(west.seen.length, 0, "the other zone got nothing while the local instance was fine");

  // The local instance breaks: two failures eject it, and traffic fails over to the other zone.
  east.status = 500;
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await send(client.outboundPort, `http://api/f/${i}`)).status);
  assert.deepEqual(statuses.slice(0, 2), [500, 500], statuses.join(","));
  assert.ok(
    statuses.slice(2).every((s) => s === 200),
    `after the ejection: ${statuses.join(",")}`,
  );
  assert.equal(appOf(await send(client.outboundPort, "http://api/after")), "api-west");
  await cp.stop();
});
