// Log injection through the config stream: a proxy's NACK message is peer-supplied text, and the
// control plane logs it. A forged newline or terminal escape must come out as a visible escape on
// the one line that logs the event, never as a second line.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  encodeMessage,
  LineDecoder,
  MAX_SNAPSHOT_MESSAGE_BYTES,
  STREAM_PATH,
  type ControlPlaneMessage,
} from "../../model/stream-protocol.ts";
import { startControlPlane } from "../control-plane.ts";

test("a NACK's message and version are logged on one line, control characters escaped", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "weft-nack-"));
  const cp = await startControlPlane({ dataDir: dir, listen: "127.0.0.1:0", streamListen: "127.0.0.1:0" });
  t.after(async () => {
    await cp.close();
    await rm(dir, { recursive: true, force: true });
  });
  const logged = new Promise<string>((resolve) => {
    t.mock.method(console, "error", (...args: unknown[]) => {
      const line = args.map(String).join(" ");
      if (line.includes("rejected config")) resolve(line);
    });
  });

  const cert = await cp.ca.issueWorkloadCertificate("spiffe://weft.local/ns/default/sa/web");
  const session = connect(cp.streamUrl, { ca: cp.ca.trustBundlePem, key: cert.keyPem, cert: cert.chainPem });
  t.after(() => session.destroy());
  session.on("error", () => {});
  const stream = session.request({ ":method": "POST", ":path": STREAM_PATH }, { endStream: false });
  stream.on("error", () => {});
  const snapshot = new Promise<ControlPlaneMessage>((resolve) => {
    const decoder = new LineDecoder(MAX_SNAPSHOT_MESSAGE_BYTES);
    stream.on("data", (c: Buffer) =>
      decoder.push(
        c,
        (m) => (m as ControlPlaneMessage).type === "snapshot" && resolve(m as ControlPlaneMessage),
      ),
    );
  });
  stream.write(
    encodeMessage({ type: "hello", workload: "web-1", address: "127.0.0.1", port: 15006, appPort: 8080 }),
  );
  const msg = await snapshot;
  assert.equal(msg.type, "snapshot");
  stream.write(
    encodeMessage({
      type: "nack",
      nonce: msg.nonce,
      version: "v1\nweft control-plane: forged",
      error: "bad route\nweft control-plane: admin login from 10.0.0.1 accepted\u001b[1A\u001b[2K",
    }),
  );
  const line = await logged;
  assert.ok(
    ![..."\n\r\u001b"].some((c) => line.includes(c)),
    `one line, no control characters: ${JSON.stringify(line)}`,
  );
  assert.match(
    line,
    /rejected config v1\\nweft control-plane: forged: bad route\\nweft control-plane: admin login/,
  );
  assert.match(line, /\\u001b\[1A\\u001b\[2K$/);
});
