// The config API and CLI against a real control plane: credentials, validation errors with
// positions, atomic applies, join tokens bound to one identity.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { ApiCallError, callApi } from "../../src/client/api-client.ts";
import { generateWorkloadKeyAndCsr } from "../../src/pki/csr.ts";
import { readConfig, startControlPlane, type ControlPlaneProcess } from "../helpers/mesh.ts";
import { tempDir, weft } from "../helpers/processes.ts";

let cp: ControlPlaneProcess;
before(async () => {
  cp = await startControlPlane();
});

const service = (name: string, port = 8080) => `apiVersion: weft.dev/v1alpha1
kind: Service
metadata:
  name: ${name}
spec:
  ports:
    - port: ${port}
`;

test("the config API without a credential answers 401 and changes nothing", async () => {
  const cfg = readConfig(cp);
  const before = await callApi<{ items: unknown[] }>(
    { server: cfg.server, ca: cfg.ca, token: cfg.token },
    "GET",
    "/api/v1/resources/Service",
  );
  for (const token of [undefined, "not-the-admin-token"]) {
    await assert.rejects(
      callApi({ server: cfg.server, ca: cfg.ca, token }, "POST", "/api/v1/apply", service("sneaky")),
      (err: ApiCallError) => {
        assert.equal(err.status, 401);
        return true;
      },
    );
  }
  const after = await callApi<{ items: unknown[] }>(
    { server: cfg.server, ca: cfg.ca, token: cfg.token },
    "GET",
    "/api/v1/resources/Service",
  );
  assert.deepEqual(after.items, before.items);
  const r = await weft(["get", "service", "sneaky"], cp.env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not found/);
});

test("apply, get and delete through the CLI", async () => {
  const dir = tempDir();
  const file = join(dir, "svc.yaml");
  writeFileSync(file, service("catalog") + "---\n" + service("orders", 9000));
  let r = await weft(["apply", "-f", file], cp.env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /service\/catalog \(default\) created/);
  assert.match(r.stdout, /service\/orders \(default\) created/);
  r = await weft(["apply", "-f", file], cp.env);
  assert.match(r.stdout, /service\/catalog \(default\) unchanged/);
  r = await weft(["get", "services", "-o", "json"], cp.env);
  const names = JSON.parse(r.stdout).items.map((i: { metadata: { name: string } }) => i.metadata.name);
  assert.ok(names.includes("catalog") && names.includes("orders"));
  r = await weft(["get", "service", "orders", "-o", "yaml"], cp.env);
  assert.match(r.stdout, /port: 9000/);
  r = await weft(["delete", "service", "orders"], cp.env);
  assert.equal(r.code, 0, r.stderr);
  r = await weft(["get", "service", "orders"], cp.env);
  assert.notEqual(r.code, 0);
});

test("bad YAML and invalid resources: every violation with line, column and path; nothing stored", async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, "bad.yaml"),
    `${service("good-one")}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: split
spec:
  parentRefs:
    - name: reviews
  rules:
    - backendRefs:
        - name: reviews-v1
          weight: -5
        - name: reviews-v2
          wieght: 3
`,
  );
  writeFileSync(join(dir, "broken.yaml"), "kind: Service\nmetadata: {name: x\n");
  const r = await weft(["apply", "-f", dir], cp.env);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.yaml:19:19: spec\.rules\[0\]\.backendRefs\[0\]\.weight: .*-5/);
  assert.match(
    r.stderr,
    /bad\.yaml:21:11: spec\.rules\[0\]\.backendRefs\[1\]\.wieght: unknown field .*did you mean "weight"/,
  );
  assert.match(r.stderr, /broken\.yaml:\d+:\d+: /);
  assert.match(r.stderr, /nothing was applied/);
  const g = await weft(["get", "service", "good-one"], cp.env);
  assert.notEqual(g.code, 0, "the valid document of a rejected apply must not be stored");
});

test("a join token for service A cannot obtain a certificate for B", async () => {
  const cfg = readConfig(cp);
  const t = await weft(["token", "create", "--service", "alpha"], cp.env);
  assert.equal(t.code, 0, t.stderr);
  const token = t.stdout.trim();
  const target = { server: cfg.server, ca: cfg.ca, token };
  const { csrPem: forB } = await generateWorkloadKeyAndCsr("spiffe://weft.local/ns/default/sa/beta");
  await assert.rejects(
    callApi(target, "POST", "/api/v1/certificates", { csr: forB }),
    (err: ApiCallError) => {
      assert.equal(err.status, 403);
      assert.equal(err.code, "csr_identity_mismatch");
      return true;
    },
  );
  const { csrPem: forA } = await generateWorkloadKeyAndCsr("spiffe://weft.local/ns/default/sa/alpha");
  const ok = await callApi<{ identity: string; certChain: string }>(target, "POST", "/api/v1/certificates", {
    csr: forA,
  });
  assert.equal(ok.identity, "spiffe://weft.local/ns/default/sa/alpha");
  assert.match(ok.certChain, /BEGIN CERTIFICATE/);
  await assert.rejects(
    callApi({ ...target, token: token.slice(0, -4) + "AAAA" }, "POST", "/api/v1/certificates", { csr: forA }),
    /401|rejected/,
  );
});
