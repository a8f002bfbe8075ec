// GET /metrics on the config API: admin only, Prometheus text, and the counters move with what the
// control plane does — a proxy connecting (a certificate signed through the API, a stream, a snapshot
// pushed) and a change applied (a piece recomputed, a snapshot compiled and pushed again).

import assert from "node:assert/strict";
import { request } from "node:https";
import { test } from "node:test";
import { generateWorkloadKeyAndCsr } from "../pki/csr.ts";
import { callApi } from "../client/api-client.ts";
import { startHarness } from "../../test/helpers/stream-client.ts";

interface Answer {
  status: number;
  type: string | undefined;
  body: string;
}

function get(url: string, ca: string, path: string, token?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, url),
      { ca, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, type: res.headers["content-type"], body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** `name{labels}` → value, from Prometheus text. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

test("GET /metrics needs the admin credential and counts connections, signing, compiles and pushes", async (t) => {
  const h = await startHarness(t);
  const { cp } = h;
  const ca = cp.ca.trustBundlePem;
  const scrape = async () => {
    const a = await get(cp.apiUrl, ca, "/metrics", cp.adminToken);
    assert.equal(a.status, 200);
    assert.match(a.type ?? "", /^text\/plain; version=0\.0\.4/);
    return parse(a.body);
  };

  // Secure by default: no credential, a workload's credential, a wrong token.
  const none = await get(cp.apiUrl, ca, "/metrics");
  assert.equal(none.status, 401);
  assert.match(none.body, /missing credential/);
  const admin = { server: cp.apiUrl, ca, token: cp.adminToken };
  const { token } = await callApi<{ token: string }>(admin, "POST", "/api/v1/tokens", {
    service: "web",
    namespace: "default",
  });
  assert.equal((await get(cp.apiUrl, ca, "/metrics", token)).status, 403);
  assert.equal((await get(cp.apiUrl, ca, "/metrics", "weft_admin_wrong")).status, 401);

  const before = await scrape();
  assert.equal(before.get("weft_cp_connected_proxies"), 0);
  assert.equal(before.get('weft_cp_pushes_total{type="snapshot"}'), 0);
  assert.equal(before.get("weft_cp_certificates_signed_total"), 0);
  assert.ok((before.get("process_resident_memory_bytes") ?? 0) > 0);
  assert.ok((before.get("nodejs_heap_size_used_bytes") ?? 0) > 0);

  // A proxy joins: its CSR signed with its join token, then its stream and first snapshot.
  const { csrPem } = await generateWorkloadKeyAndCsr("spiffe://weft.local/ns/default/sa/web");
  await callApi({ server: cp.apiUrl, ca, token }, "POST", "/api/v1/certificates", { csr: csrPem });
  const proxy = await h.open("web", {}, { autoAck: true });
  await proxy.next((m) => m.type === "snapshot");
  const joined = await scrape();
  assert.equal(joined.get("weft_cp_certificates_signed_total"), 1);
  assert.equal(joined.get("weft_cp_connected_proxies"), 1);
  assert.equal(joined.get('weft_cp_admission_admitted_total{queue="stream"}'), 1);
  assert.equal(joined.get('weft_cp_admission_admitted_total{queue="signing"}'), 1);
  assert.equal(joined.get('weft_cp_admission_queued{queue="stream"}'), 0);
  assert.equal(joined.get('weft_cp_pushes_total{type="snapshot"}'), 1);
  assert.ok((joined.get("weft_cp_pushed_bytes_total") ?? 0) > 100);
  assert.ok((joined.get("weft_cp_snapshots_compiled_total") ?? 0) >= 1);
  assert.equal(joined.get('weft_cp_resources{kind="Workload"}'), 1);
  assert.equal(joined.get('weft_cp_cache_entries{cache="proxy_snapshots"}'), 1);

  // A change it is concerned by: a Service it reaches appears.
  const routesBefore = joined.get('weft_cp_pieces_recomputed_total{piece="route_table"}') ?? 0;
  const clustersBefore = joined.get('weft_cp_pieces_recomputed_total{piece="cluster"}') ?? 0;
  await callApi(
    admin,
    "POST",
    "/api/v1/apply",
    "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: api}\nspec: {ports: [{port: 8080, protocol: http}]}\n",
  );
  // The change reaches the proxy as a delta from the snapshot it ACKed.
  await proxy.next((m) => m.type === "delta");
  const changed = await scrape();
  assert.equal(changed.get('weft_cp_pushes_total{type="snapshot"}'), 1);
  assert.equal(changed.get('weft_cp_pushes_total{type="delta"}'), 1);
  assert.ok(changed.get("weft_cp_pushed_bytes_total")! > joined.get("weft_cp_pushed_bytes_total")!);
  assert.ok(
    changed.get("weft_cp_snapshots_compiled_total")! > joined.get("weft_cp_snapshots_compiled_total")!,
  );
  assert.ok(changed.get('weft_cp_pieces_recomputed_total{piece="route_table"}')! > routesBefore);
  assert.ok(changed.get('weft_cp_pieces_recomputed_total{piece="cluster"}')! >= clustersBefore);
  assert.equal(changed.get('weft_cp_resources{kind="Service"}'), 1);

  // No series is per proxy or per Service: the label values come from fixed sets.
  const text = (await get(cp.apiUrl, ca, "/metrics", cp.adminToken)).body;
  assert.doesNotMatch(text, /web-1|"api|api\.default/);
});
