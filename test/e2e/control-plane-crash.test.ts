// kill -9 of the control plane during a burst of applies: after a restart every acknowledged apply is
// there and the store is readable.

import assert from "node:assert/strict";
import { test } from "node:test";
import { callApi } from "../../src/client/api-client.ts";
import { readConfig, startControlPlane } from "../helpers/mesh.ts";

test("no acknowledged apply is lost when the control plane is SIGKILLed mid-burst", async (t) => {
  let cp = await startControlPlane();
  const dataDir = cp.dataDir;
  for (let round = 0; round < 3; round++) {
    const cfg = readConfig(cp);
    const target = { server: cfg.server, ca: cfg.ca, token: cfg.token };
    const acked: string[] = [];
    let stop = false;
    // 8 concurrent writers, each applying new Services one after another until the kill.
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop && i < 10_000; i++) {
        const name = `r${round}-w${w}-${i}`;
        try {
          await callApi(
            target,
            "POST",
            "/api/v1/apply",
            `apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: ${name}}\nspec: {ports: [{port: ${1000 + i}}]}\n`,
          );
          acked.push(name);
        } catch {
          return; // the control plane is gone
        }
      }
    });
    const killAfter = 300 + round * 250;
    await new Promise((r) => setTimeout(r, killAfter));
    cp.proc.kill("SIGKILL");
    stop = true;
    await Promise.all(writers);
    await cp.exited;
    assert.ok(acked.length > 0, "some applies were acknowledged before the kill");
    t.diagnostic(`round ${round}: ${acked.length} applies acknowledged before SIGKILL`);

    cp = await startControlPlane({ dataDir });
    const cfg2 = readConfig(cp);
    const { items } = await callApi<{ items: { metadata: { name: string } }[] }>(
      { server: cfg2.server, ca: cfg2.ca, token: cfg2.token },
      "GET",
      "/api/v1/resources/Service",
    );
    const present = new Set(items.map((i) => i.metadata.name));
    const lost = acked.filter((n) => !present.has(n));
    assert.deepEqual(lost, [], `round ${round}: ${lost.length} of ${acked.length} acknowledged applies lost`);
  }
  await cp.stop();
});
