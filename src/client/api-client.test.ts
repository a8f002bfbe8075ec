// The control plane's error messages reach the CLI user's terminal: callApi keeps them to one line
// with control characters visible, so a message cannot forge output lines or send terminal escapes.

import assert from "node:assert/strict";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { createTestCa } from "../proxy/testing/certs.ts";
import { ApiCallError, callApi } from "./api-client.ts";

test("an error message from the control plane is escaped: one line, escapes visible", async (t) => {
  const testCa = await createTestCa();
  t.after(() => testCa.cleanup());
  const cert = await testCa.ca.issueServerCertificate({
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
  });
  const message = "bad thing\nweft: applied everything \u001b[32mOK\u001b[0m";
  const server = createServer({ key: cert.keyPem, cert: cert.chainPem }, (_req, res) => {
    res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "bad_request", message } }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => server.close());
  const target = {
    server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    ca: testCa.ca.trustBundlePem,
  };
  const err = await callApi(target, "GET", "/api/v1/identity").then(
    () => assert.fail("expected an error"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApiCallError);
  assert.equal(err.code, "bad_request");
  assert.equal(err.message, "bad thing\\nweft: applied everything \\u001b[32mOK\\u001b[0m");
  assert.ok(!err.message.includes("\n") && !err.message.includes("\u001b"), "no newline or ESC left");
});
