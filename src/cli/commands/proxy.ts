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
    await new Promise<void>((resolve) => {
      const stop = () => proxy.drain().then(resolve, resolve);
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    return 0;
  },
};
