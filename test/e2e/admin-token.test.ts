// The admin token of a real `weft proxy`: written 0600 beside the CLI config, named in the start-up
// line, required by POST /drain; what the docs tell users to run with curl works.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { httpGet, startApp, startControlPlane, startProxy } from "../helpers/mesh.ts";

const run = promisify(execFile);

test("weft proxy: POST /drain needs the token from its 0600 admin token file", async () => {
  const cp = await startControlPlane();
  const app = await startApp("web");
  const proxy = await startProxy(cp, "web", app.port);
  const file = proxy.adminTokenFile;
  assert.equal(dirname(file), cp.dataDir, "by default beside the CLI config the proxy used");
  assert.equal(file.endsWith(`proxy-admin-${proxy.adminPort}.token`), true);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const token = readFileSync(file, "utf8").trim();
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.doesNotMatch(proxy.output(), new RegExp(token), "the token itself is never logged");

  const drain = (...headers: string[]) =>
    run("curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-X",
      "POST",
      ...headers.flatMap((h) => ["-H", h]),
      `http://127.0.0.1:${proxy.adminPort}/drain`,
    ]).then((r) => r.stdout);
  assert.equal(await drain("Content-Type: text/plain"), "401");
  assert.equal(await drain("Authorization: Bearer wrong-token"), "401");
  assert.equal((await httpGet(proxy.adminPort, "/ready")).status, 200, "still serving");
  assert.equal(await drain(`Authorization: Bearer ${readFileSync(file, "utf8").trim()}`), "202");
});
