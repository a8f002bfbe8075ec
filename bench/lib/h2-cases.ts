// The HTTP/2 and gRPC cases: h2load (several streams per connection) against a node:http2 upstream
// and against a @grpc/grpc-js upstream, directly and through a weft sidecar pair (client app → client
// sidecar's outbound listener over h2c → mTLS h2 → server sidecar → app; the Service declares its port
// `http2` or `grpc`). As in cases.ts, each case proves its path with one request before it is measured
// and stops its proxies afterwards; the gRPC cases also check after the load that every response h2load
// counted as 2xx was a gRPC OK (h2load does not read trailers).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { APP_PROTOCOL_HEADER } from "../h2-upstream.ts";
import { framedRequest, GRPC_PATH, GRPC_REPLY } from "../grpc-upstream.ts";
import { UPSTREAM_BODY } from "../upstream.ts";
import type { CaseContext, CaseDef, Running } from "./cases.ts";
import { expectGrpcReply, expectH2Body } from "./h2-check.ts";
import { freePort, spawnPinned, sleep, type Child } from "./proc.ts";
import { sumSeries, type Sidecar } from "./weft.ts";

const H2_PORT = 8080;
const GRPC_PORT = 9090;
const SERVICES = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: bench-h2 }
spec: { ports: [{ name: h2, port: ${H2_PORT}, protocol: http2 }] }
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: { name: bench-grpc }
spec: { ports: [{ name: grpc, port: ${GRPC_PORT}, protocol: grpc }] }
`;
const GRPC_MESSAGE = Buffer.from("weft bench grpc request".padEnd(32, "z"));
const GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"];
const INBOUND = ["weft_requests_total{", 'direction="inbound"'];
const OUTBOUND_TLS = ["weft_upstream_connections_total{", 'direction="outbound"', 'tls="true"'];

/** The gRPC upstream, with the count of calls it answered OK. */
export interface GrpcApp {
  port: number;
  child: Child;
  calls(): Promise<number>;
}

export async function startH2App(core: number): Promise<{ port: number; child: Child }> {
  const child = spawnPinned("h2-upstream", core, process.execPath, [
    join(import.meta.dirname, "..", "h2-upstream.ts"),
  ]);
  const port = Number((await child.waitFor(/h2-upstream listening 127\.0\.0\.1:(\d+)/, 10_000))[1]);
  return { port, child };
}

export async function startGrpcApp(core: number): Promise<GrpcApp> {
  const child = spawnPinned("grpc-upstream", core, process.execPath, [
    join(import.meta.dirname, "..", "grpc-upstream.ts"),
  ]);
  const port = Number((await child.waitFor(/grpc-upstream listening 127\.0\.0\.1:(\d+)/, 10_000))[1]);
  const calls = async () => {
    const from = child.output().length;
    process.kill(child.pid, "SIGUSR2");
    for (let waited = 0; waited < 2000; waited += 10) {
      const m = child
        .output()
        .slice(from)
        .match(/grpc-upstream calls (\d+)/);
      if (m) return Number(m[1]);
      await sleep(10);
    }
    throw new Error("grpc-upstream did not report its call count");
  };
  return { port, child, calls };
}

/** After the load: the app answered at least as many OK calls as h2load counted 2xx responses. */
function grpcCallsCheck(app: GrpcApp, before: number): (requests: number) => Promise<string[]> {
  return async (requests) => {
    const answered = (await app.calls()) - before;
    return answered >= requests
      ? []
      : [`h2load counted ${requests} 2xx responses but the gRPC app answered only ${answered} calls OK`];
  };
}

async function stopEach(children: (Child | undefined)[]): Promise<void> {
  await Promise.all(children.map((c) => c?.stop()));
}

/** Starts the server sidecar for `service` (its app on `appPort`) and a client sidecar, then runs `check`. */
async function startPair(
  ctx: CaseContext,
  service: string,
  appPort: number,
  check: (client: Sidecar, server: Sidecar) => Promise<Partial<Running>>,
): Promise<Running> {
  const mesh = await ctx.mesh();
  await mesh.apply("bench-h2-services", SERVICES);
  let server: Sidecar | undefined;
  let client: Sidecar | undefined;
  try {
    server = await mesh.startProxy(service, appPort, ctx.settings.proxyCore);
    client = await mesh.startProxy("bench-client", await freePort(), ctx.settings.proxyCore);
    const extra = await check(client, server);
    const tls = sumSeries(await client.metrics(), OUTBOUND_TLS);
    if (!(tls > 0)) throw new Error("the client sidecar opened no TLS connection to the server sidecar");
    const [sc, sv] = [client, server];
    const notes = [
      `ready: server sidecar ${Math.round(server.startupMs)} ms, client sidecar ${Math.round(client.startupMs)} ms; CPU and RSS are both sidecars summed`,
      ...(extra.notes ?? []),
    ];
    return {
      target: extra.target!,
      rootPids: [client.child.pid, server.child.pid],
      startupMs: Math.max(client.startupMs, server.startupMs),
      notes,
      afterLoad: async (requests) => {
        const problems = (await extra.afterLoad?.(requests)) ?? [];
        // Multiplexed: all of the load on a few sessions, not a connection per request in flight.
        const opened = sumSeries(await sc.metrics(), OUTBOUND_TLS);
        notes.push(
          `TLS connections the client sidecar opened to the server sidecar over the whole case: ${opened}`,
        );
        return problems;
      },
      stop: () => stopEach([sc.child, sv.child]),
    };
  } catch (err) {
    await stopEach([client?.child, server?.child]);
    throw err;
  }
}

async function checkedInbound(server: Sidecar, words: string[], send: () => Promise<unknown>): Promise<void> {
  const before = sumSeries(await server.metrics(), words);
  await send();
  const after = sumSeries(await server.metrics(), words);
  if (!(after > before))
    throw new Error(
      `${server.service}'s /metrics series matching ${words.join("+")} did not grow (${before} → ${after})`,
    );
}

function grpcTarget(url: string, host: string | undefined, workDir: string): Running["target"] {
  const dataFile = join(workDir, "grpc-request.bin");
  writeFileSync(dataFile, framedRequest(GRPC_MESSAGE));
  return { url: url + GRPC_PATH.slice(1), host, h2: { dataFile, headers: GRPC_HEADERS } };
}

export const H2_CASES: CaseDef[] = [
  {
    id: "h2-direct",
    label: "(f) HTTP/2 direct",
    group: "h2",
    async prepare(ctx) {
      const { port } = await ctx.h2App();
      const url = `http://127.0.0.1:${port}/`;
      await expectH2Body(url, undefined, UPSTREAM_BODY, 2000);
      return { target: { url, h2: {} }, rootPids: [], stop: async () => {} };
    },
  },
  {
    id: "weft-h2",
    label: "(g) HTTP/2 through the weft pair",
    group: "h2",
    baseline: "h2-direct",
    async prepare(ctx) {
      const { port } = await ctx.h2App();
      const host = `bench-h2:${H2_PORT}`;
      return startPair(ctx, "bench-h2", port, async (client, server) => {
        const url = `http://127.0.0.1:${client.outboundPort}/`;
        await expectH2Body(url, host, UPSTREAM_BODY, 10_000); // also waits for the config
        let appProtocol = "";
        await checkedInbound(server, [...INBOUND, 'response_code="200"'], async () => {
          appProtocol = String(
            (await expectH2Body(url, host, UPSTREAM_BODY, 0)).headers[APP_PROTOCOL_HEADER],
          );
        });
        const appLeg =
          appProtocol === "2.0"
            ? "server sidecar → app over h2c"
            : `server sidecar → app over HTTP/${appProtocol} (it does not speak h2c to \`http2\` ports yet), so this is h2c → h2 → HTTP/1.1`;
        return {
          target: { url, host, h2: {} },
          notes: [`app → client sidecar over h2c, sidecars over mTLS h2; ${appLeg}`],
        };
      });
    },
  },
  {
    id: "grpc-direct",
    label: "(h) gRPC unary direct",
    group: "grpc",
    async prepare(ctx) {
      const app = await ctx.grpcApp();
      await expectGrpcReply(`127.0.0.1:${app.port}`, undefined, GRPC_MESSAGE, GRPC_REPLY, 2000);
      const before = await app.calls();
      const target = grpcTarget(`http://127.0.0.1:${app.port}/`, undefined, ctx.settings.workDir);
      return { target, rootPids: [], afterLoad: grpcCallsCheck(app, before), stop: async () => {} };
    },
  },
  {
    id: "weft-grpc",
    label: "(i) gRPC unary through the weft pair",
    group: "grpc",
    baseline: "grpc-direct",
    async prepare(ctx) {
      const app = await ctx.grpcApp();
      const host = `bench-grpc:${GRPC_PORT}`;
      return startPair(ctx, "bench-grpc", app.port, async (client, server) => {
        const target = `127.0.0.1:${client.outboundPort}`;
        await expectGrpcReply(target, host, GRPC_MESSAGE, GRPC_REPLY, 10_000);
        const ok = [...INBOUND, 'grpc_status="0"'];
        await checkedInbound(server, ok, () => expectGrpcReply(target, host, GRPC_MESSAGE, GRPC_REPLY, 0));
        const okBefore = sumSeries(await server.metrics(), ok);
        const allBefore = sumSeries(await server.metrics(), INBOUND);
        const callsBefore = await app.calls();
        return {
          target: grpcTarget(`http://${target}/`, host, ctx.settings.workDir),
          notes: ["app → client sidecar over h2c, sidecars over mTLS h2, server sidecar → app over h2c"],
          afterLoad: async (requests) => {
            const problems = await grpcCallsCheck(app, callsBefore)(requests);
            const m = await server.metrics();
            const notOk = sumSeries(m, INBOUND) - allBefore - (sumSeries(m, ok) - okBefore);
            if (notOk > 0)
              problems.push(`the server sidecar counted ${notOk} requests without grpc-status 0`);
            return problems;
          },
        };
      });
    },
  },
];
