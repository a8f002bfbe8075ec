// Real TLS handshakes on 127.0.0.1 with issued certificates: what the proxy and control plane do.
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { CertificateAuthority } from "./ca.ts";
import { peerSpiffeId } from "./spiffe.ts";
import { withTempDir, writeUserCa } from "./test-ca-helpers.ts";

const TD = "weft.local";
const WEB = "spiffe://weft.local/ns/default/sa/web";
const DB = "spiffe://weft.local/ns/default/sa/db";

interface Creds {
  keyPem: string;
  chainPem: string;
}

interface Outcome {
  serverSawPeer?: string;
  clientSawPeer?: string;
  serverError?: Error;
  clientError?: Error;
}

/** mTLS server + client; resolves once both sides have settled. */
async function handshake(server: Creds, serverCa: string, client: Creds, clientCa: string): Promise<Outcome> {
  const out: Outcome = {};
  const srv = tls.createServer({
    key: server.keyPem,
    cert: server.chainPem,
    ca: serverCa,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  });
  srv.on("secureConnection", (s) => {
    out.serverSawPeer = peerSpiffeId(s.getPeerCertificate());
    s.end("ok");
  });
  const serverDone = new Promise<void>((resolve) => {
    srv.on("secureConnection", () => resolve());
    srv.on("tlsClientError", (err) => {
      out.serverError = err;
      resolve();
    });
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address() as AddressInfo;
  const sock = tls.connect({
    host: "127.0.0.1",
    port,
    key: client.keyPem,
    cert: client.chainPem,
    ca: clientCa,
    // Workload certificates carry no DNS/IP names: identity is the SPIFFE ID, checked by the caller.
    checkServerIdentity: () => undefined,
  });
  const clientDone = new Promise<void>((resolve) => {
    sock.on("secureConnect", () => {
      out.clientSawPeer = peerSpiffeId(sock.getPeerCertificate());
    });
    sock.on("data", () => {});
    sock.on("error", (err) => {
      out.clientError = err;
      resolve();
    });
    sock.on("close", () => resolve());
  });
  await Promise.all([serverDone, clientDone]);
  sock.destroy();
  srv.close();
  return out;
}

test("mTLS with issued certificates: each side sees the other's SPIFFE ID", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const web = await ca.issueWorkloadCertificate(WEB);
    const db = await ca.issueWorkloadCertificate(DB);
    const out = await handshake(db, ca.trustBundlePem, web, ca.trustBundlePem);
    assert.equal(out.serverError, undefined);
    assert.equal(out.clientError, undefined);
    assert.equal(out.serverSawPeer, WEB);
    assert.equal(out.clientSawPeer, DB);
  });
});

test("a client certificate from a different CA is rejected by the server", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(join(dir, "a"), { trustDomain: TD });
    const rogue = await CertificateAuthority.loadOrCreate(join(dir, "b"), { trustDomain: TD });
    const db = await ca.issueWorkloadCertificate(DB);
    const fakeWeb = await rogue.issueWorkloadCertificate(WEB);
    // The client trusts the real CA (so it accepts the server); the server must refuse the client.
    const out = await handshake(db, ca.trustBundlePem, fakeWeb, ca.trustBundlePem);
    // TLS 1.3: the client finishes first, then the server checks its certificate and drops the
    // connection (Node reports that as tlsClientError). It must never reach secureConnection.
    assert.ok(out.serverError, "server reported a client error");
    assert.equal(out.serverSawPeer, undefined);
  });
});

test("a server certificate from a different CA is rejected by the client", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(join(dir, "a"), { trustDomain: TD });
    const rogue = await CertificateAuthority.loadOrCreate(join(dir, "b"), { trustDomain: TD });
    const fakeDb = await rogue.issueWorkloadCertificate(DB);
    const web = await ca.issueWorkloadCertificate(WEB);
    const out = await handshake(fakeDb, ca.trustBundlePem, web, ca.trustBundlePem);
    assert.ok(out.clientError, "client refused the server");
    assert.equal((out.clientError as NodeJS.ErrnoException).code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    assert.equal(out.clientSawPeer, undefined);
    assert.equal(out.serverSawPeer, undefined);
  });
});

test("mTLS through a user-supplied intermediate, trusting only the root", async () => {
  await withTempDir(async (dir) => {
    const user = await writeUserCa(dir);
    const ca = await CertificateAuthority.loadOrCreate(dir, {
      trustDomain: TD,
      certFile: user.intCertFile,
      keyFile: user.intKeyFile,
    });
    const web = await ca.issueWorkloadCertificate(WEB);
    const db = await ca.issueWorkloadCertificate(DB);
    const out = await handshake(db, user.rootCertPem, web, user.rootCertPem);
    assert.equal(out.serverError, undefined);
    assert.equal(out.serverSawPeer, WEB);
    assert.equal(out.clientSawPeer, DB);
  });
});

test("control-plane server certificate verifies for 127.0.0.1 with default hostname checks", async () => {
  await withTempDir(async (dir) => {
    const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: TD });
    const s = await ca.issueServerCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    const srv = tls.createServer({ key: s.keyPem, cert: s.chainPem }, (sock) => sock.end("hi"));
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    const { port } = srv.address() as AddressInfo;
    try {
      for (const host of ["127.0.0.1", "localhost"]) {
        const sock = tls.connect({ host, port, ca: ca.trustBundlePem });
        await once(sock, "secureConnect");
        assert.equal(sock.authorized, true);
        sock.destroy();
      }
      const wrong = tls.connect({
        host: "127.0.0.1",
        port,
        ca: ca.trustBundlePem,
        servername: "example.com",
      });
      const [err] = (await once(wrong, "error")) as [NodeJS.ErrnoException];
      assert.equal(err.code, "ERR_TLS_CERT_ALTNAME_INVALID");
    } finally {
      srv.close();
    }
  });
});
