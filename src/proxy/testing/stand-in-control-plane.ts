// A stand-in control plane for the proxy's config client: a real HTTP/2 server over mutual TLS (a
// temp CA, removed afterwards) that says exactly what a test wants on each stream, and a real
// ConfigClient connected to it, publishing into a SnapshotCell that listeners can follow.

import { mkdtempSync, rmSync } from "node:fs";
import { createSecureServer, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { LineDecoder, MAX_PROXY_MESSAGE_BYTES } from "../../model/stream-protocol.ts";
import { CertificateAuthority } from "../../pki/ca.ts";
import { Cell } from "../agent/cell.ts";
import { ConfigClient, type ConfigClientOptions } from "../agent/config-client.ts";
import { SnapshotCell } from "../agent/snapshot-cell.ts";
import type { TlsMaterial } from "../types.ts";

export async function standIn(
  t: TestContext,
  onStream: (s: ServerHttp2Stream, received: unknown[]) => void,
  opts: Pick<ConfigClientOptions, "onReject"> & { snapshot?: SnapshotCell; backoffMs?: number } = {},
) {
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
    snapshot: opts.snapshot ?? new SnapshotCell(),
    onReject: opts.onReject,
    url: `https://127.0.0.1:${(h2.address() as AddressInfo).port}`,
    ca: ca.trustBundlePem,
    tls,
    log: (m) => logs.push(m),
    hello: { workload: "web-1", address: "127.0.0.1", port: 15006, appPort: 8080 },
    minBackoffMs: opts.backoffMs ?? 60_000,
    maxBackoffMs: opts.backoffMs ?? 60_000,
  });
  t.after(() => client.stop(false));
  return { client, received, logs };
}
