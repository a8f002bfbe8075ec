// `weft proxy`: a sidecar for an app that runs on its own. It registers as not serving and joins the
// endpoints once it is ready and the app accepts connections; SIGTERM/SIGINT or POST /drain run the
// drain sequence (leave the endpoints, serve on for --drain-delay, close), after which it exits 0.

import type { Command } from "../command.ts";
import { proxyFlags, proxyOptions, resolveProxyOptions } from "../proxy-flags.ts";

export const proxyCommand: Command = {
  name: "proxy",
  summary: "run a sidecar proxy for an app that is already running",
  usage: "weft proxy --service NAME --port APP_PORT [flags]",
  flags: proxyFlags,
  options: proxyOptions,
  async run(v) {
    const opts = await resolveProxyOptions(v);
    const proxy = await (await import("../../proxy/agent/proxy.ts")).startProxy(opts);
    console.error(
      `weft proxy[${opts.service}]: ${proxy.identity}; outbound 127.0.0.1:${proxy.outboundPort}, inbound :${proxy.inboundPort}, admin 127.0.0.1:${proxy.adminPort}` +
        Object.entries(proxy.upstreamPorts)
          .map(([svc, port]) => `, upstream ${svc}=127.0.0.1:${port}`)
          .join("") +
        (proxy.adminTokenFile ? `; admin token in ${proxy.adminTokenFile}` : ""),
    );
    let code = 0;
    let stopping = false;
    // Never ready (e.g. the inbound port is taken): say why and stop.
    proxy.whenReady.catch((err: Error) => {
      if (stopping) return;
      console.error(`weft proxy[${opts.service}]: cannot serve: ${err.message}`);
      code = 1;
      void proxy.drain();
    });
    const stop = () => {
      stopping = true;
      void proxy.drain();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    // However the drain started (a signal, POST /drain), the command ends with it.
    await proxy.stopped;
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    return code;
  },
};
