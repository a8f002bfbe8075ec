// The five ways of reaching the same upstream. Each case starts its proxies pinned to the proxy core,
// proves with one request that the path really works (200 and the upstream's exact body; for weft,
// the sidecars' own metrics count the request), and stops them afterwards, so only one case's
// proxies are alive while it is measured.

import { join } from "node:path";
import { UPSTREAM_BODY } from "../upstream.ts";
import { expectBody } from "./http-check.ts";
import type { BenchSettings, PreparedCase } from "./measure.ts";
import { startNginx } from "./nginx.ts";
import { freePort, spawnPinned, type Child } from "./proc.ts";
import type { GrpcApp } from "./h2-cases.ts";
import { sumSeries, type Sidecar, type WeftMesh } from "./weft.ts";

export interface CaseContext {
  settings: BenchSettings;
  upstreamPort: number;
  /** The control plane, started on first use, with the static Workload for bench-direct applied. */
  mesh(): Promise<WeftMesh>;
  /** The HTTP/2 and gRPC cases' upstreams (h2-cases.ts), each started on first use. */
  h2App(): Promise<{ port: number }>;
  grpcApp(): Promise<GrpcApp>;
}

export interface Running extends PreparedCase {
  stop(): Promise<void>;
}

export interface CaseDef {
  id: string;
  label: string;
  /** Which table the case belongs to (default: the HTTP/1.1 one). */
  group?: "h2" | "grpc";
  /** The case its ratios and added latency are taken against (default: direct). */
  baseline?: string;
  prepare(ctx: CaseContext): Promise<Running>;
}

const BODY = UPSTREAM_BODY.toString("utf8");

const ROUTED_ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: bench-routed }
spec:
  parentRefs: [{ kind: Service, name: bench-routed }]
  rules:
    - matches: [{ path: { type: PathPrefix, value: /api/v2 }, headers: [{ name: x-canary, value: "true" }] }]
      backendRefs: [{ name: bench-routed }]
    - matches: [{ path: { type: Exact, value: /healthz } }]
      backendRefs: [{ name: bench-routed }]
    - matches: [{ path: { type: PathPrefix, value: /admin }, method: POST }]
      backendRefs: [{ name: bench-routed }]
    - matches: [{ path: { type: PathPrefix, value: / } }]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: { set: [{ name: x-mesh, value: weft }] }
      timeouts: { request: 5s }
      retry: { attempts: 2, codes: [503], backoff: 25ms }
      backendRefs: [{ name: bench-routed }]
`;
const OUTBOUND_OK = ["weft_requests_total{", 'direction="outbound"', 'response_code="200"'];
// The server sidecar knows the caller's service only from its mTLS client certificate.
const INBOUND_OK = [
  "weft_requests_total{",
  'direction="inbound"',
  'source_service="bench-client.',
  'response_code="200"',
];
const OUTBOUND_TLS = ["weft_upstream_connections_total{", 'direction="outbound"', 'tls="true"'];
const BENCH_DIR = join(import.meta.dirname, "..");

async function stopAll(children: (Child | undefined)[]): Promise<void> {
  await Promise.all(children.map((c) => c?.stop()));
}

/** Sends one checked request through `url` and insists `sidecar`'s metrics counted it. */
async function checkThrough(url: string, host: string, sidecar: Sidecar, words: string[]): Promise<void> {
  await expectBody(url, { host }, BODY, 10_000); // also waits for the config to reach the sidecar
  const before = sumSeries(await sidecar.metrics(), words);
  await expectBody(url, { host }, BODY, 0);
  const after = sumSeries(await sidecar.metrics(), words);
  if (!(after > before)) {
    throw new Error(
      `a request through ${url} (Host: ${host}) returned 200, but ${sidecar.service}'s /metrics series ` +
        `matching ${words.join("+")} did not grow (${before} → ${after})`,
    );
  }
}

export const CASES: CaseDef[] = [
  {
    id: "direct",
    label: "(a) direct",
    async prepare(ctx) {
      const url = `http://127.0.0.1:${ctx.upstreamPort}/`;
      await expectBody(url, {}, BODY, 2000);
      return { target: { url }, rootPids: [], stop: async () => {} };
    },
  },
  {
    id: "weft-hop",
    label: "(b) weft, one outbound hop",
    async prepare(ctx) {
      const mesh = await ctx.mesh();
      const s = ctx.settings;
      const client = await mesh.startProxy("bench-client", await freePort(), s.proxyCore);
      try {
        const url = `http://127.0.0.1:${client.outboundPort}/`;
        await checkThrough(url, "bench-direct", client, OUTBOUND_OK);
        return {
          target: { url, host: "bench-direct" },
          rootPids: [client.child.pid],
          startupMs: client.startupMs,
          stop: () => stopAll([client.child]),
        };
      } catch (err) {
        await stopAll([client.child]);
        throw err;
      }
    },
  },
  {
    id: "weft-mtls",
    label: "(c) weft sidecar pair, mTLS",
    async prepare(ctx) {
      const mesh = await ctx.mesh();
      const s = ctx.settings;
      let server: Sidecar | undefined;
      let client: Sidecar | undefined;
      try {
        server = await mesh.startProxy("bench-mesh", ctx.upstreamPort, s.proxyCore);
        client = await mesh.startProxy("bench-client", await freePort(), s.proxyCore);
        const url = `http://127.0.0.1:${client.outboundPort}/`;
        await checkThrough(url, "bench-mesh", server, INBOUND_OK);
        if (!(sumSeries(await client.metrics(), OUTBOUND_TLS) > 0)) {
          throw new Error("the client sidecar opened no TLS connection to the server sidecar");
        }
        const sc = client;
        const sv = server;
        const notes = [
          `ready: server sidecar ${Math.round(server.startupMs)} ms, client sidecar ${Math.round(client.startupMs)} ms; CPU and RSS are both sidecars summed`,
        ];
        return {
          target: { url, host: "bench-mesh" },
          rootPids: [client.child.pid, server.child.pid],
          startupMs: Math.max(client.startupMs, server.startupMs),
          notes,
          // Between the sidecars the HTTP/1.1 requests travel as h2 streams (ALPN): a handful of
          // connections carry wrk's 50, where an HTTP/1.1 pool would open one per request in flight.
          afterLoad: async () => {
            const opened = sumSeries(await sc.metrics(), OUTBOUND_TLS);
            notes.push(
              `TLS connections the client sidecar opened to the server sidecar over the whole case: ${opened}`,
            );
            return [];
          },
          stop: () => stopAll([sc.child, sv.child]),
        };
      } catch (err) {
        await stopAll([client?.child, server?.child]);
        throw err;
      }
    },
  },
  {
    id: "weft-routed",
    label: "(c2) weft pair, mTLS, realistic route",
    async prepare(ctx) {
      const mesh = await ctx.mesh();
      const s = ctx.settings;
      // A route as a user would write one: a few matches, retries and a timeout on the rule that
      // takes the traffic, a request header set (metrics are always on).
      await mesh.apply("bench-routed-route", ROUTED_ROUTE);
      let server: Sidecar | undefined;
      let client: Sidecar | undefined;
      try {
        server = await mesh.startProxy("bench-routed", ctx.upstreamPort, s.proxyCore);
        client = await mesh.startProxy("bench-client", await freePort(), s.proxyCore);
        const url = `http://127.0.0.1:${client.outboundPort}/`;
        await checkThrough(url, "bench-routed", server, INBOUND_OK);
        const config = await (await fetch(`http://127.0.0.1:${client.adminPort}/config`)).text();
        if (!config.includes('"retry"')) throw new Error("the client sidecar runs no route with retries");
        const sc = client;
        const sv = server;
        return {
          target: { url, host: "bench-routed" },
          rootPids: [client.child.pid, server.child.pid],
          startupMs: Math.max(client.startupMs, server.startupMs),
          notes: [
            "route: 4 rules (header, exact, prefix, method matches); retry 2 attempts on 503; 5 s request timeout; a request header set — compare with (c)",
          ],
          stop: () => stopAll([sc.child, sv.child]),
        };
      } catch (err) {
        await stopAll([client?.child, server?.child]);
        throw err;
      }
    },
  },
  {
    id: "nginx",
    label: "(d) nginx, 1 worker",
    async prepare(ctx) {
      const ng = await startNginx(ctx.settings.workDir, ctx.upstreamPort, ctx.settings.proxyCore);
      try {
        const url = `http://127.0.0.1:${ng.port}/`;
        await expectBody(url, {}, BODY, 2000);
        return { target: { url }, rootPids: [ng.child.pid], stop: () => stopAll([ng.child]) };
      } catch (err) {
        await stopAll([ng.child]);
        throw err;
      }
    },
  },
  {
    id: "node",
    label: "(e) Node http + undici dispatch",
    async prepare(ctx) {
      const child = spawnPinned("node-proxy", ctx.settings.proxyCore, process.execPath, [
        join(BENCH_DIR, "node-proxy.ts"),
        String(ctx.upstreamPort),
      ]);
      try {
        const port = Number((await child.waitFor(/node-proxy listening 127\.0\.0\.1:(\d+)/, 10_000))[1]);
        const url = `http://127.0.0.1:${port}/`;
        await expectBody(url, {}, BODY, 2000);
        return { target: { url }, rootPids: [child.pid], stop: () => stopAll([child]) };
      } catch (err) {
        await stopAll([child]);
        throw err;
      }
    },
  },
];
