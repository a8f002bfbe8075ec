// Benchmark proxy: one listener in its own process, configured from argv (no control plane).
// Usage: [WEFT_TRANSPORT=undici] node proxy-process.ts outbound <upstreamPort> [identity] [certDir]
//        node proxy-process.ts inbound <appPort> <certDir>
// certDir holds key.pem, chain.pem, bundle.pem and id.txt. Prints the bound port on stdout.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Cell } from "../agent/cell.ts";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { createInboundListener } from "../inbound/listener.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { createOutboundListener } from "../outbound/listener.ts";
import type { TlsMaterial } from "../types.ts";
import { buildSnapshot } from "../testing/snapshots.ts";

const [mode, portArg, a3, a4] = process.argv.slice(2);
const transport = process.env.WEFT_TRANSPORT === "undici" ? "undici" : "h1";
const port = Number(portArg);
const certDir = mode === "inbound" ? a3 : a4;
const tls = new Cell<TlsMaterial>();
if (certDir) {
  const read = (f: string) => readFileSync(join(certDir, f), "utf8");
  tls.set({
    keyPem: read("key.pem"),
    certChainPem: read("chain.pem"),
    trustBundlePem: read("bundle.pem"),
    spiffeId: read("id.txt"),
  });
}
const config = new Cell<ProxySnapshot>();
const metrics = new ProxyMetrics();
let listener;
if (mode === "outbound") {
  const identity = a3 && a3 !== "-" ? a3 : undefined;
  config.set(buildSnapshot({ services: [{ name: "app", port: 9080, endpoints: [{ port, identity }] }] }));
  listener = createOutboundListener({ config, tls, metrics, pool: { transport } });
} else {
  config.set(
    buildSnapshot({
      appPort: port,
      proxy: { service: "app", namespace: "default", identity: tls.current()!.spiffeId },
    }),
  );
  listener = createInboundListener({ config, tls, metrics, pool: { transport } });
}
const addr = await listener.listen(0, "127.0.0.1");
process.stdout.write(`${addr.port}\n`);
process.on("SIGUSR2", () => process.stderr.write(`${JSON.stringify(process.memoryUsage())}\n`));
process.on("SIGINT", () => process.exit(0));
