// The proxy's end of the config stream against a stand-in control plane that says exactly what the
// test wants: of several snapshots that arrive together only the newest is compiled and ACKed, and a
// line over the snapshot limit drops the connection instead of being buffered whole.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createSecureServer, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import {
  encodeMessage,
  LineDecoder,
  MAX_PROXY_MESSAGE_BYTES,
  MAX_SNAPSHOT_MESSAGE_BYTES,
} from "../../model/stream-protocol.ts";
import { CertificateAuthority } from "../../pki/ca.ts";
import { waitUntil } from "../../../test/helpers/mesh.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import type { TlsMaterial } from "../types.ts";
import { Cell } from "./cell.ts";
import { ConfigClient } from "./config-client.ts";

async function standIn(t: TestContext, onStream: (s: ServerHttp2Stream, received: unknown[]) => void) {
  const dir = mkdtempSync(join(tmpdir(), "weft-cc-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: "weft.local" });
  const server = await ca.issueServerCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const h2 = createSecureServer({
    key: server.keyPem,
    cert: server.chainPem,
    ca: ca.trustBundlePem,
    requestCert: true,
  });
  const received: unknown[] = [];
  h2.on("stream", (stream) => {
    stream.on("error", () => {});
    stream.respond({ ":status": 200 });
    const d = new LineDecoder(MAX_PROXY_MESSAGE_BYTES);
    stream.on("data", (c: Buffer) => d.push(c, (m) => received.push(m)));
    onStream(stream, received);
  });
  await new Promise<void>((r) => h2.listen(0, "127.0.0.1", r));
  t.after(() => new Promise<void>((r) => h2.close(() => r())));
  const id = "spiffe://weft.local/ns/default/sa/web";
  const cert = await ca.issueWorkloadCertificate(id);
  const tls = new Cell<TlsMaterial>();
  tls.set({
    keyPem: cert.keyPem,
    certChainPem: cert.chainPem,
    trustBundlePem: ca.trustBundlePem,
    spiffeId: id,
  });
  const logs: string[] = [];
  const client = new ConfigClient({
    snapshot: new Cell<ProxySnapshot>(),
    url: `https://127.0.0.1:${(h2.address() as AddressInfo).port}`,
    ca: ca.trustBundlePem,
    tls,
    log: (m) => logs.push(m),
    hello: { workload: "web-1", address: "127.0.0.1", port: 15006, appPort: 8080 },
    minBackoffMs: 60_000,
    maxBackoffMs: 60_000,
  });
  t.after(() => client.stop(false));
  return { client, received, logs };
}

test("of snapshots that arrive together, only the newest is checked, run and ACKed", async (t) => {
  const applied: string[] = [];
  const { client, received } = await standIn(t, (stream) => {
    const lines = [1, 2, 3].map((n) =>
      encodeMessage({
        type: "snapshot",
        nonce: n,
        version: `v${n}`,
        snapshot: buildSnapshot({ version: `v${n}` }),
      }),
    );
    stream.write(lines.join(""));
  });
  client.snapshot.subscribe((s) => applied.push(s.version));
  client.start();
  await waitUntil(() => received.some((m) => (m as { type: string }).type === "ack"), 10_000, "the ACK");
  assert.deepEqual(applied, ["v3"]);
  const acks = received.filter((m) => (m as { type: string }).type === "ack");
  assert.deepEqual(acks, [{ type: "ack", nonce: 3, version: "v3" }]);
});

test("a line from the control plane longer than the snapshot limit drops the connection", async (t) => {
  let wrote = 0;
  const { client, logs } = await standIn(t, (stream) => {
    // Keep sending one endless line, as long as the proxy keeps reading.
    const chunk = Buffer.alloc(1024 * 1024, "x");
    const more = () => {
      while (!stream.destroyed && wrote <= MAX_SNAPSHOT_MESSAGE_BYTES + chunk.length) {
        wrote += chunk.length;
        if (!stream.write(chunk)) return void stream.once("drain", more);
      }
    };
    more();
  });
  client.start();
  await waitUntil(
    () => logs.some((l) => /bad message from control plane/.test(l)),
    10_000,
    "the refusal logged",
  );
  assert.match(logs.join("\n"), /exceeds the limit of 16777216 bytes/);
  assert.equal(client.snapshot.current(), undefined);
  assert.equal(client.connected, false);
});
