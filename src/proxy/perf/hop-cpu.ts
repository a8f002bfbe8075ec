// CPU per proxied request of one outbound hop, with and without the sidecar's heap tuning
// (../agent/heap-tuning.ts): the listener runs in a child process of its own, this process is the
// app and a keep-alive client (8 at a time, 100-byte answers). Prints µs of the child's user+system
// CPU per request over N requests after a warm-up. A quick check, not the benchmark (npm run bench).
//
//   node src/proxy/perf/hop-cpu.ts [requests=20000] [--v8-defaults]

import { fork } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

async function child(appPort: number, tuned: boolean): Promise<void> {
  if (tuned) (await import("../agent/heap-tuning.ts")).tuneHeapForProxy();
  const { startOutbound } = await import("../testing/harness.ts");
  const { buildSnapshot } = await import("../testing/snapshots.ts");
  const p = await startOutbound(
    buildSnapshot({ services: [{ name: "api", endpoints: [{ port: appPort }] }] }),
  );
  let from = process.cpuUsage();
  process.on("message", (m: string) => {
    if (m === "start") {
      from = process.cpuUsage();
      process.send?.("started");
      return;
    }
    const c = process.cpuUsage(from);
    const u = process.memoryUsage();
    process.send?.({ cpuUs: c.user + c.system, rss: u.rss, heapTotal: u.heapTotal });
    void p.close().then(() => process.exit(0));
  });
  process.send?.({ port: p.port });
}

async function main(): Promise<void> {
  const n = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 20_000);
  const tuned = !process.argv.includes("--v8-defaults");
  const app = http.createServer((_req, res) => res.end("x".repeat(100)));
  app.listen(0, "127.0.0.1");
  await once(app, "listening");
  const appPort = (app.address() as AddressInfo).port;
  const c = fork(fileURLToPath(import.meta.url), ["--child", String(appPort), tuned ? "tuned" : "defaults"]);
  const [{ port }] = (await once(c, "message")) as [{ port: number }];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const one = () =>
    new Promise<void>((resolve, reject) =>
      http
        .get({ host: "127.0.0.1", port, path: "http://api/x", headers: { host: "api" }, agent }, (r) => {
          r.resume();
          r.on("end", resolve);
        })
        .on("error", reject),
    );
  const run = async (count: number) => {
    let i = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (i++ < count) await one();
      }),
    );
  };
  await run(3_000);
  c.send("start");
  await once(c, "message");
  await run(n);
  c.send("stop");
  const [r] = (await once(c, "message")) as [{ cpuUs: number; rss: number; heapTotal: number }];
  const mb = (b: number) => (b / 1048576).toFixed(0);
  process.stdout.write(
    `${tuned ? "heap-tuned" : "V8 defaults"}: ${(r.cpuUs / n).toFixed(1)} µs CPU per request, ` +
      `rss ${mb(r.rss)} MB, V8 heap ${mb(r.heapTotal)} MB\n`,
  );
  agent.destroy();
  app.close();
}

if (process.argv[2] === "--child") await child(Number(process.argv[3]), process.argv[4] === "tuned");
else await main();
