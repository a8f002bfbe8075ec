// The CLI's contract: --help on every command, one-line errors with a hint, meaningful exit codes.

import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { test } from "node:test";
import { tempDir, weft } from "../helpers/processes.ts";

const COMMANDS = [
  ["control-plane"],
  ["proxy"],
  ["run"],
  ["apply"],
  ["get"],
  ["delete"],
  ["token", "create"],
  ["demo"],
];

test("every command has --help with its usage and flags, exit 0", async () => {
  const top = await weft(["--help"]);
  assert.equal(top.code, 0);
  for (const c of COMMANDS) {
    assert.ok(top.stdout.includes(c.join(" ")), `weft --help lists ${c.join(" ")}`);
    const r = await weft([...c, "--help"]);
    assert.equal(r.code, 0, `${c.join(" ")} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: weft ${c.join(" ")}`));
  }
});

test("mistakes get one clear line, a hint, and exit code 2; a missing control plane exit code 1", async () => {
  let r = await weft(["frobnicate"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^weft: unknown command "frobnicate"\n {2}run `weft --help`/);
  r = await weft(["get", "--bogus"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^weft: .*--bogus/);
  r = await weft(["get", "gizmos"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown kind "gizmos"/);
  // No config anywhere: says where it looked and what to do.
  const empty = tempDir();
  r = await weft(["get", "services"], { WEFT_CONFIG: `${empty}/missing.json` });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot read weft config/);
});

test("a control plane that cannot listen says which address and exits 1 instead of lingering", async () => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
  const port = (busy.address() as AddressInfo).port;
  try {
    for (const flag of ["--listen", "--stream-listen"]) {
      const other = flag === "--listen" ? "--stream-listen" : "--listen";
      const r = await weft([
        "control-plane",
        "--data-dir",
        tempDir(),
        flag,
        `127.0.0.1:${port}`,
        other,
        "127.0.0.1:0",
      ]);
      assert.equal(r.code, 1, `${flag} busy: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`));
    }
  } finally {
    busy.close();
  }
});
