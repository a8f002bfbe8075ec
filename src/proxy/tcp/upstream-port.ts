// An explicit upstream port (`--upstream svc=port`, `--upstream svc:servicePort=port`): one loopback
// listener for one service port, whose protocol the Service declares. Each new connection is looked
// at once, before any byte of it is read: to a `tcp` port it is proxied as TCP (tcp-proxy.ts); to any
// other it is handed to the HTTP listener for that service (the `http` callback). Nothing waits for
// the client to speak, so server-speaks-first protocols (MySQL, SMTP, a Redis greeting) just work.

import net from "node:net";
import type { AddressInfo, Socket } from "node:net";
import type { ProxyListener } from "../http/listener-lifecycle.ts";
import type { TcpProxy } from "./tcp-proxy.ts";

export interface UpstreamPortOptions {
  tcp: TcpProxy;
  /** "name" or "name.namespace". */
  service: string;
  /** The service port; default the Service's first declared port. */
  servicePort?: number;
  /** Takes a connection to a port that is not `tcp` (paused; the callee resumes it). */
  http: (socket: Socket) => void;
}

export class UpstreamPort implements ProxyListener {
  readonly server: net.Server;
  readonly #opts: UpstreamPortOptions;

  constructor(opts: UpstreamPortOptions) {
    this.#opts = opts;
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) =>
      this.#accept(s),
    );
  }

  #accept(socket: Socket): void {
    const target = this.#opts.tcp.target(this.#opts.service, this.#opts.servicePort);
    if (target === undefined) return this.#opts.http(socket);
    this.#opts.tcp.serve(socket, target);
  }

  async listen(port: number, host = "127.0.0.1"): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.removeListener("error", reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  address(): AddressInfo | undefined {
    return (this.server.address() as AddressInfo | null) ?? undefined;
  }

  /** Stops accepting; the shared TcpProxy drains the connections (the agent drains it once). */
  async drain(): Promise<void> {
    if (this.server.listening) this.server.close();
  }

  async close(): Promise<void> {
    if (this.server.listening) this.server.close();
  }
}
