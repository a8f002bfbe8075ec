// Memory of the inbound listener under many short-lived mTLS connections (issue 6, hole 10).
// The listener runs in a child process of its own (so only its memory is measured); this process is
// the app and the clients. Each connection does a full handshake with a client certificate (no
// session resumption: N different callers), sends one request, reads the answer and closes.
// Reports the child's RSS, heap and external memory before, after the connections, and after idle.
//
//   node bench/tls-memory.ts  (or node src/proxy/perf/tls-memory.ts) [--connections 20000] [--concurrency 16] [--idle-seconds 5]
//                            [--rounds 1] [--child-flag=--max-semi-space-size=1 ...] [--node-https]
//                            [--v8-defaults]
// --node-https measures Node's own https server with the same certificates instead, for comparison;
// --v8-defaults leaves out the sidecar's V8 tuning (../agent/heap-tuning.ts).
//
// Run it on a quiet machine; RSS figures move by a few MB from run to run.

import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  connections: number;
}

const MB = 1024 * 1024;

/** The comparison: Node's own https server with the same certificates, answering by itself. */
async function bareHttps(material: { keyPem: string; certChainPem: string; trustBundlePem: string }) {
  const https = await import("node:https");
  const server = https.createServer(
    {
      key: material.keyPem,
      cert: material.certChainPem,
      ca: material.trustBundlePem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (_req, res) => res.end("ok"),
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    active: () => new Promise<number>((r) => server.getConnections((_e, n) => r(n))),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function child(): Promise<void> {
  // As a sidecar runs (startProxy), unless measuring Node's defaults.
  if (process.env.WEFT_TLS_MEMORY_V8_DEFAULTS === undefined) {
    const { tuneHeapForProxy } = await import("../agent/heap-tuning.ts");
    tuneHeapForProxy();
  }
  const { startInbound } = await import("../testing/harness.ts");
  const { buildSnapshot } = await import("../testing/snapshots.ts");
  const [appPort, materialJson, what] = [Number(process.argv[3]), process.argv[4], process.argv[5]];
  const material = JSON.parse(materialJson);
  const proxy = { service: "api", namespace: "default", identity: material.spiffeId };
  const p =
    what === "node-https"
      ? await bareHttps(material)
      : await (async () => {
          const i = await startInbound(buildSnapshot({ appPort, proxy }), material);
          const active = () => {
            const m = i.metrics.render().match(/^weft_downstream_connections_active\{[^}]*\} (\d+)/m);
            return Promise.resolve(m ? Number(m[1]) : -1);
          };
          return { port: i.port, active, close: () => i.close() };
        })();
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on("message", async (m: string) => {
    if (m === "stop") {
      void p.close().then(() => process.exit(0));
      return;
    }
    gc?.();
    gc?.();
    const u = process.memoryUsage();
    const active = await p.active();
    const mem: Memory = {
      rss: u.rss,
      heapUsed: u.heapUsed,
      heapTotal: u.heapTotal,
      external: u.external,
      arrayBuffers: u.arrayBuffers,
      connections: active,
    };
    process.send?.(mem);
  });
  process.send?.({ port: p.port });
}

function ask(c: ChildProcess): Promise<Memory> {
  c.send("measure");
  return once(c, "message").then(([m]) => m as Memory);
}

function oneConnection(port: number, opts: tls.ConnectionOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ...opts, checkServerIdentity: () => undefined });
    s.on("error", reject);
    s.once("secureConnect", () => s.write("GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"));
    let got = "";
    s.on("data", (d: Buffer) => (got += d.toString("latin1")));
    s.on("close", () => (got.startsWith("HTTP/1.1 200") ? resolve() : reject(new Error(got.slice(0, 80)))));
  });
}

function fmt(m: Memory): string {
  return (
    `rss ${(m.rss / MB).toFixed(1)} MB, heap ${(m.heapUsed / MB).toFixed(1)} MB used ` +
    `of ${(m.heapTotal / MB).toFixed(1)} MB, ` +
    `external ${(m.external / MB).toFixed(1)} MB, connections ${m.connections}`
  );
}

export interface TlsMemoryResult {
  before: Memory;
  /** After the last round; `rounds` has one measurement per round. */
  after: Memory;
  rounds: Memory[];
  idle: Memory;
}

/** Opens `connections` mTLS connections to a fresh inbound listener, `rounds` times; measures its memory. */
export async function measureTlsMemory(opts: {
  connections: number;
  /** Bursts of `connections` each (default 1); memory is measured after each. */
  rounds?: number;
  concurrency: number;
  idleMs: number;
  /** Extra Node flags for the listener's process. */
  childFlags?: string[];
  /** "weft" (the inbound listener, default) or "node-https" (Node's https server, for comparison). */
  server?: "weft" | "node-https";
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}): Promise<TlsMemoryResult> {
  const { createTestCa, sid } = await import("../testing/certs.ts");
  const ca = await createTestCa();
  const server = await ca.material(sid("api"));
  const client = await ca.material(sid("web"));
  const app = createServer((_req, res) => res.end("ok"));
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  const appPort = (app.address() as AddressInfo).port;
  const c = fork(
    fileURLToPath(import.meta.url),
    ["--child", String(appPort), JSON.stringify({ ...server, notAfter: undefined }), opts.server ?? "weft"],
    {
      execArgv: ["--expose-gc", ...(opts.childFlags ?? [])],
      env: opts.env ?? process.env,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    },
  );
  try {
    const [{ port }] = (await once(c, "message")) as [{ port: number }];
    const before = await ask(c);
    opts.log?.(`before: ${fmt(before)}`);
    const clientOpts: tls.ConnectionOptions = {
      key: client.keyPem,
      cert: client.certChainPem,
      ca: client.trustBundlePem,
      ALPNProtocols: ["http/1.1"],
    };
    const rounds: Memory[] = [];
    for (let round = 1; round <= (opts.rounds ?? 1); round++) {
      let next = 0;
      const worker = async () => {
        while (next < opts.connections) {
          next++;
          await oneConnection(port, clientOpts);
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: opts.concurrency }, worker));
      const secs = (performance.now() - t0) / 1000;
      const m = await ask(c);
      rounds.push(m);
      opts.log?.(`after ${round * opts.connections} connections (${secs.toFixed(1)} s): ${fmt(m)}`);
    }
    await new Promise((r) => setTimeout(r, opts.idleMs));
    const idle = await ask(c);
    opts.log?.(`after ${opts.idleMs / 1000} s idle: ${fmt(idle)}`);
    return { before, after: rounds[rounds.length - 1], rounds, idle };
  } finally {
    c.send("stop");
    await once(c, "exit");
    app.close();
    await ca.cleanup();
  }
}

/** The command line: flags as in the header. */
export async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: "string" },
      concurrency: { type: "string" },
      "idle-seconds": { type: "string" },
      "child-flag": { type: "string", multiple: true },
      "node-https": { type: "boolean" },
      "v8-defaults": { type: "boolean" },
      rounds: { type: "string" },
    },
  });
  await measureTlsMemory({
    connections: Number(values.connections ?? 20_000),
    concurrency: Number(values.concurrency ?? 16),
    rounds: Number(values.rounds ?? 1),
    idleMs: Number(values["idle-seconds"] ?? 5) * 1000,
    childFlags: values["child-flag"],
    server: values["node-https"] ? "node-https" : "weft",
    env: values["v8-defaults"] ? { ...process.env, WEFT_TLS_MEMORY_V8_DEFAULTS: "1" } : process.env,
    log: (l) => process.stdout.write(`${l}\n`),
  });
}

if (process.argv[2] === "--child") await child();
else if (import.meta.url === `file://${process.argv[1]}`) await main();
