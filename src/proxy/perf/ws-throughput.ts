// WebSocket through the sidecar pair (mTLS) against the same client talking to the app directly:
// round trips of small messages one at a time, 10k pipelined small messages, and a 64 MB stream of
// 1 MB messages. Everything runs in this one process (client, both sidecars, app), so the ratios
// say more than the absolute figures. Run: node src/proxy/perf/ws-throughput.ts

import { once } from "node:events";
import { WebSocket } from "ws";
import { createTestCa, sid } from "../testing/certs.ts";
import { startInbound, startOutbound } from "../testing/harness.ts";
import { buildSnapshot } from "../testing/snapshots.ts";
import { startWsEcho } from "../testing/upgrade-apps.ts";

async function open(url: string, host?: string): Promise<WebSocket> {
  const ws = new WebSocket(url, host === undefined ? {} : { headers: { host } });
  await once(ws, "open");
  return ws;
}

/** Sends `n` messages of `size` bytes, at most `window` unanswered; resolves with the elapsed ms. */
async function run(ws: WebSocket, n: number, size: number, window: number): Promise<number> {
  const payload = Buffer.alloc(size, 7);
  const started = performance.now();
  let sent = 0;
  let received = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (sent < n && sent - received < window) {
        ws.send(payload);
        sent++;
      }
    };
    ws.on("message", () => {
      received++;
      if (received === n) resolve();
      else pump();
    });
    pump();
  });
  ws.removeAllListeners("message");
  return performance.now() - started;
}

async function measure(label: string, ws: WebSocket): Promise<void> {
  const rtt = await run(ws, 2_000, 32, 1);
  const pipelined = await run(ws, 10_000, 32, 10_000);
  const bulk = await run(ws, 64, 1024 * 1024, 4);
  console.log(
    `${label.padEnd(8)} round trip ${((rtt * 1000) / 2_000).toFixed(0).padStart(5)} µs   ` +
      `10k pipelined ${pipelined.toFixed(0).padStart(5)} ms   ` +
      `64 MB echoed ${((64 * 2 * 1000) / bulk).toFixed(0).padStart(4)} MB/s (both ways)`,
  );
}

const ca = await createTestCa();
const app = await startWsEcho();
const ECHO = sid("echo");
const inbound = await startInbound(
  buildSnapshot({ appPort: app.port, proxy: { service: "echo", namespace: "default", identity: ECHO } }),
  await ca.material(ECHO),
);
const outbound = await startOutbound(
  buildSnapshot({ services: [{ name: "echo", endpoints: [{ port: inbound.port, identity: ECHO }] }] }),
  { tls: await ca.material(sid("web")) },
);
for (let round = 0; round < 2; round++) {
  const direct = await open(`ws://127.0.0.1:${app.port}/`);
  await measure("direct", direct);
  direct.close();
  const viaPair = await open(`ws://127.0.0.1:${outbound.port}/`, "echo");
  await measure("pair", viaPair);
  viaPair.close();
}
await Promise.all([outbound.close(), inbound.close(), app.close()]);
await ca.cleanup();
