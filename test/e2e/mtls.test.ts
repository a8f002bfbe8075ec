// The inbound listener is mutual TLS, STRICT: plaintext and certificates from another CA are refused;
// the certificate it serves carries the service's SPIFFE ID.

import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { before, test } from "node:test";
import { callApi } from "../../src/client/api-client.ts";
import { CertificateAuthority } from "../../src/pki/ca.ts";
import { generateWorkloadKeyAndCsr } from "../../src/pki/csr.ts";
import { peerSpiffeId } from "../../src/pki/spiffe.ts";
import {
  readConfig,
  startApp,
  startControlPlane,
  startProxy,
  type ControlPlaneProcess,
  type ProxyProcess,
} from "../helpers/mesh.ts";
import { tempDir } from "../helpers/processes.ts";

let cp: ControlPlaneProcess;
let server: ProxyProcess;
let app: Awaited<ReturnType<typeof startApp>>;

before(async () => {
  cp = await startControlPlane();
  app = await startApp("secure");
  server = await startProxy(cp, "secure", app.port);
});

function tlsRequest(opts: {
  key?: string;
  cert?: string;
  ca: string;
}): Promise<{ socket?: TLSSocket; error?: Error; response?: string }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port: server.inboundPort,
      ca: opts.ca,
      key: opts.key,
      cert: opts.cert,
      checkServerIdentity: () => undefined,
    });
    let response = "";
    socket.on("secureConnect", () =>
      socket.write("GET /private HTTP/1.1\r\nHost: secure\r\nConnection: close\r\n\r\n"),
    );
    socket.on("data", (d) => (response += d));
    socket.on("error", (error) => resolve({ error, response }));
    socket.on("close", () => resolve({ socket, response }));
  });
}

async function meshCert(service: string): Promise<{ key: string; cert: string; ca: string }> {
  const cfg = readConfig(cp);
  const { keyPem, csrPem } = await generateWorkloadKeyAndCsr(`spiffe://weft.local/ns/default/sa/${service}`);
  const out = await callApi<{ certChain: string; trustBundle: string }>(
    { server: cfg.server, ca: cfg.ca, token: cfg.token },
    "POST",
    "/api/v1/certificates",
    { csr: csrPem, service },
  );
  return { key: keyPem, cert: out.certChain, ca: out.trustBundle };
}

test("a mesh client certificate is accepted and the served certificate carries the SPIFFE ID", async () => {
  const { key, cert, ca } = await meshCert("caller");
  const before = app.seen.length;
  let served: string | undefined;
  const r = await new Promise<string>((resolve, reject) => {
    const s = tlsConnect(
      { host: "127.0.0.1", port: server.inboundPort, ca, key, cert, checkServerIdentity: () => undefined },
      () => {
        served = peerSpiffeId(s.getPeerCertificate());
        s.write("GET /private HTTP/1.1\r\nHost: secure\r\nConnection: close\r\n\r\n");
      },
    );
    let out = "";
    s.on("data", (d) => (out += d));
    s.on("end", () => resolve(out));
    s.on("error", reject);
  });
  assert.equal(served, "spiffe://weft.local/ns/default/sa/secure");
  assert.match(r, /^HTTP\/1\.1 200/);
  assert.equal(app.seen.length, before + 1);
  assert.match(
    String(app.seen.at(-1)!.headers["x-forwarded-client-cert"]),
    /URI=spiffe:\/\/weft\.local\/ns\/default\/sa\/caller/,
  );
});

test("plaintext HTTP to the inbound listener is refused and never reaches the app", async () => {
  const before = app.seen.length;
  const out = await new Promise<string>((resolve) => {
    const s = netConnect(server.inboundPort, "127.0.0.1", () =>
      s.write("GET /private HTTP/1.1\r\nHost: secure\r\n\r\n"),
    );
    let data = "";
    s.on("data", (d) => (data += d.toString("latin1")));
    s.on("error", () => resolve(data));
    s.on("close", () => resolve(data));
  });
  assert.doesNotMatch(out, /200 OK/);
  assert.equal(app.seen.length, before);
});

test("TLS without a client certificate, or with one from another CA, is refused", async () => {
  const before = app.seen.length;
  const { ca } = await meshCert("caller");
  const noCert = await tlsRequest({ ca });
  assert.doesNotMatch(noCert.response ?? "", /200 OK/);
  const foreign = await CertificateAuthority.loadOrCreate(tempDir(), { trustDomain: "weft.local" });
  const impostor = await foreign.issueWorkloadCertificate("spiffe://weft.local/ns/default/sa/caller");
  const r = await tlsRequest({ ca, key: impostor.keyPem, cert: impostor.chainPem });
  assert.doesNotMatch(r.response ?? "", /200 OK/);
  assert.equal(app.seen.length, before, "the app saw none of these requests");
});
