// A config API on 127.0.0.1:0 for the API's tests (hostile callers, admission, header deadline): a
// fresh data dir, store, CA and token issuer, all removed when the test ends.

import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { CertificateAuthority } from "../../../pki/ca.ts";
import { TokenIssuer } from "../../../pki/tokens.ts";
import { openEmbeddedStore } from "../../../store/embedded/index.ts";
import { MeshStateCache } from "../../mesh-state.ts";
import { createApiServer, type ApiDeps } from "../server.ts";

/** The admin bearer token of every test API. */
export const TEST_ADMIN_TOKEN = "admin-token-for-the-api-tests";

export async function startTestApi(t: TestContext, extra: Partial<ApiDeps> = {}) {
  const dir = await mkdtemp(join(tmpdir(), "weft-api-limits-"));
  const store = await openEmbeddedStore(join(dir, "store"));
  const state = new MeshStateCache(store);
  await state.start();
  const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: "weft.local" });
  const tokens = await TokenIssuer.loadOrCreate(dir);
  const cert = await ca.issueServerCertificate({ ipAddresses: ["127.0.0.1"], dnsNames: ["localhost"] });
  const server = createApiServer({
    store,
    state,
    ca,
    tokens,
    adminToken: TEST_ADMIN_TOKEN,
    tls: { keyPem: cert.keyPem, certPem: cert.chainPem },
    trustDomain: () => "weft.local",
    ...extra,
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    state.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const port = (server.address() as AddressInfo).port;
  const token = (service: string) => tokens.create({ service, namespace: "default" });
  return { server, port, ca: ca.trustBundlePem, token };
}
