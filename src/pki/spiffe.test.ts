import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import { parseSpiffeId, peerSpiffeId, spiffeId } from "./spiffe.ts";
import { isPkiError } from "./errors.ts";

test("spiffeId builds and parseSpiffeId round-trips", () => {
  const id = spiffeId("weft.local", "default", "web");
  assert.equal(id, "spiffe://weft.local/ns/default/sa/web");
  assert.deepEqual(parseSpiffeId(id), {
    trustDomain: "weft.local",
    namespace: "default",
    serviceAccount: "web",
  });
});

test("spiffeId refuses parts that cannot appear in an ID", () => {
  for (const [td, ns, sa] of [
    ["Weft.local", "a", "b"],
    ["weft.local", "a/b", "c"],
    ["weft.local", "..", "c"],
    ["weft.local", "a", ""],
    ["weft.local:8080", "a", "b"],
  ]) {
    assert.throws(
      () => spiffeId(td, ns, sa),
      (e) => isPkiError(e, "spiffe_id_invalid"),
      `${td} ${ns} ${sa}`,
    );
  }
});

test("parseSpiffeId is strict", () => {
  for (const s of [
    "spiffe://weft.local/ns/default/sa/web/",
    "spiffe://weft.local/ns/default/sa/web/extra",
    "SPIFFE://weft.local/ns/default/sa/web",
    "spiffe://WEFT.local/ns/default/sa/web",
    "spiffe://weft.local/ns/default/sa/we%62",
    "spiffe://weft.local/ns/default/sa/web?x=1",
    "spiffe://weft.local/ns/default/sa/web#f",
    "spiffe://user@weft.local/ns/default/sa/web",
    "spiffe://weft.local:443/ns/default/sa/web",
    "spiffe://weft.local/sa/web/ns/default",
    "spiffe://weft.local/ns//sa/web",
    "spiffe://weft.local/ns/./sa/web",
    "spiffe:///ns/default/sa/web",
    "https://weft.local/ns/default/sa/web",
    " spiffe://weft.local/ns/default/sa/web",
    "",
  ]) {
    assert.equal(parseSpiffeId(s), undefined, s);
  }
});

const peer = (subjectaltname: string) => ({ subjectaltname }) as PeerCertificate;

test("peerSpiffeId reads exactly one URI SAN from a PeerCertificate", () => {
  const id = "spiffe://weft.local/ns/default/sa/web";
  assert.equal(peerSpiffeId(peer(`URI:${id}`)), id);
  assert.equal(peerSpiffeId(peer(`DNS:web.local, URI:${id}, IP Address:127.0.0.1`)), id);
  assert.equal(peerSpiffeId(peer(`URI:${id}, URI:spiffe://weft.local/ns/default/sa/db`)), undefined);
  assert.equal(peerSpiffeId(peer(`URI:${id}, URI:https://example.com/`)), undefined);
  assert.equal(peerSpiffeId(peer(`URI:"${id}, URI:spiffe://x/ns/a/sa/b"`)), undefined);
  assert.equal(peerSpiffeId(peer("DNS:web.local")), undefined);
  assert.equal(peerSpiffeId(peer("URI:spiffe://weft.local/web")), undefined);
  assert.equal(peerSpiffeId({} as PeerCertificate), undefined);
  assert.equal(peerSpiffeId(undefined), undefined);
});

test("peerSpiffeId reads a crypto.X509Certificate", async () => {
  const { CertificateAuthority } = await import("./ca.ts");
  const { mkdtemp, rm } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = await mkdtemp(join(tmpdir(), "weft-spiffe-"));
  try {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: "weft.local" });
    const id = "spiffe://weft.local/ns/shop/sa/cart";
    const issued = await ca.issueWorkloadCertificate(id);
    assert.equal(peerSpiffeId(new X509Certificate(issued.certPem)), id);
    const server = await ca.issueServerCertificate({ dnsNames: ["localhost"], ipAddresses: [] });
    assert.equal(peerSpiffeId(new X509Certificate(server.certPem)), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
