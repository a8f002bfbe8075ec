// A client sidecar's outbound listener and a server sidecar's inbound listener, in process, joined by
// mesh mTLS (h2 by ALPN): service "reviews" (port 9080) has one endpoint, the inbound in front of the
// app on `appPort` — spoken to in HTTP/1.1, or over h2c when `appProtocol` is "http2" (the port is
// then declared http2 on both sides). For tests of what crosses the pair; both are closed by the
// test's cleanup.

import { sid, type TestCa } from "./certs.ts";
import { startInbound, startOutbound } from "./harness.ts";
import { buildSnapshot } from "./snapshots.ts";

export async function startSidecarPair(
  t: { after(fn: () => unknown): void },
  ca: TestCa,
  appPort: number,
  appProtocol: "http" | "http2" = "http",
) {
  const reviews = sid("reviews");
  const h2c = appProtocol === "http2";
  const inbound = await startInbound(
    buildSnapshot({
      appPort,
      inboundPorts: h2c ? [{ port: 9080, appPort, protocol: "http2" }] : undefined,
      proxy: { service: "reviews", namespace: "default", identity: reviews },
    }),
    await ca.material(reviews),
    { http2: true },
  );
  const outbound = await startOutbound(
    buildSnapshot({
      services: [
        {
          name: "reviews",
          ...(h2c ? { ports: [{ port: 9080, protocol: "http2" as const }] } : { port: 9080 }),
          endpoints: [{ port: inbound.port, identity: reviews }],
        },
      ],
    }),
    { tls: await ca.material(sid("web")), h2c: true },
  );
  t.after(() => Promise.all([outbound.close(), inbound.close()]));
  return { inbound, outbound };
}
