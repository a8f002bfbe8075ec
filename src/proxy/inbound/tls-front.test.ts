// The inbound TLS front: one mTLS termination for every protocol; the negotiated ALPN id picks the
// handler, with the same certificate and SPIFFE checks whatever the protocol.

import { test } from "node:test";
import assert from "node:assert/strict";
import tls from "node:tls";
import { once } from "node:events";
import type { TLSSocket } from "node:tls";
import { createTestCa, sid } from "../testing/certs.ts";
import { metricValue, startInbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import type { TlsMaterial } from "../types.ts";
import { peerOf } from "./peer.ts";

const ca = await createTestCa();
const foreign = await createTestCa();
test.after(() => Promise.all([ca.cleanup(), foreign.cleanup()]));
const serverMaterial = await ca.material(sid("app"));
const web = await ca.material(sid("web"));

function connect(port: number, m: TlsMaterial, ALPNProtocols: string[]): tls.TLSSocket {
  return tls.connect({
    host: "127.0.0.1",
    port,
    key: m.keyPem,
    cert: m.certChainPem,
    ca: m.trustBundlePem,
    ALPNProtocols,
    checkServerIdentity: () => undefined,
  });
}

test("a registered ALPN id gets the verified socket (peer attached); other clients still get HTTP/1.1", async (t) => {
  const inbound = await startInbound(buildSnapshot({ appPort: 1 }), serverMaterial, { http2: true });
  t.after(() => inbound.close());
  const handed: { alpn: string | false | null; peer: string | undefined }[] = [];
  inbound.listener.registerAlpn("weft-test/1", (socket: TLSSocket) => {
    handed.push({ alpn: socket.alpnProtocol, peer: peerOf(socket)?.id });
    socket.end("tunnel says hi");
  });

  const custom = connect(inbound.port, web, ["weft-test/1", "http/1.1"]);
  custom.on("error", () => {});
  let got = "";
  custom.on("data", (d: Buffer) => (got += d.toString()));
  await once(custom, "end");
  assert.equal(custom.alpnProtocol, "weft-test/1");
  assert.equal(got, "tunnel says hi");
  assert.deepEqual(handed, [{ alpn: "weft-test/1", peer: sid("web") }]);

  // The server prefers h2 (registered by the listener) over HTTP/1.1; a client offering neither
  // h2 nor a registered id, but http/1.1, is served HTTP/1.1.
  const h2 = connect(inbound.port, web, ["http/1.1", "h2"]);
  await once(h2, "secureConnect");
  assert.equal(h2.alpnProtocol, "h2");
  h2.destroy();
  const h1 = connect(inbound.port, web, ["spdy/3", "http/1.1"]);
  await once(h1, "secureConnect");
  assert.equal(h1.alpnProtocol, "http/1.1");
  h1.write("GET /x HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n");
  let text = "";
  h1.on("data", (d: Buffer) => (text += d.toString()));
  await once(h1, "end");
  assert.match(text, /^HTTP\/1\.1 503 /, "reached the HTTP/1.1 edge (the app port is closed)");
  assert.equal(handed.length, 1);
});

test("the certificate checks are the front's, before any protocol: a foreign CA is refused for a registered id too", async (t) => {
  const inbound = await startInbound(buildSnapshot({ appPort: 1 }), serverMaterial);
  t.after(() => inbound.close());
  let handed = 0;
  inbound.listener.registerAlpn("weft-test/1", (socket) => {
    handed++;
    socket.destroy();
  });
  const stranger = await foreign.material(sid("web"));
  const s = connect(inbound.port, { ...stranger, trustBundlePem: web.trustBundlePem }, ["weft-test/1"]);
  s.on("error", () => {});
  await new Promise((r) => s.once("close", r));
  assert.equal(handed, 0);

  // A client offering only protocols the port does not speak fails the handshake (ALPN alert).
  const unknown = connect(inbound.port, web, ["spdy/3"]);
  unknown.on("error", () => {});
  await new Promise((r) => unknown.once("close", r));
  const text = inbound.metrics.render();
  assert.equal(metricValue(text, "weft_tls_handshake_failures_total", { reason: "bad_certificate" }), 1);
  assert.equal(metricValue(text, "weft_tls_handshake_failures_total", { reason: "alpn" }), 1);
});
