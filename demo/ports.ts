// Ports for the demo: free ones for the sidecars and apps (the OS picks them), and a check that the
// control plane's fixed ports are free, with a message that says what to stop when they are not.

import { createServer, type Server } from "node:net";

export class PortInUseError extends Error {
  readonly port: number;
  constructor(port: number, what: string, envVar: string) {
    super(
      [
        `127.0.0.1:${port} is already in use, and the demo's ${what} needs it.`,
        `  Another \`weft demo\` or \`weft control-plane\` is probably running: stop it (Ctrl-C in its terminal).`,
        `  To see what holds the port: lsof -nP -iTCP:${port} -sTCP:LISTEN   (or: ss -ltnp 'sport = :${port}')`,
        `  Or run the demo on other ports: ${envVar}=<port> npm start`,
      ].join("\n"),
    );
    this.port = port;
  }
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Throws PortInUseError when something already listens on 127.0.0.1:port. */
export async function assertPortFree(port: number, what: string, envVar: string): Promise<void> {
  let server: Server;
  try {
    server = await listen(port);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") throw new PortInUseError(port, what, envVar);
    throw new Error(`cannot check 127.0.0.1:${port}: ${(err as Error).message}`, { cause: err });
  }
  await close(server);
}

/**
 * `n` distinct ports that are free right now on 127.0.0.1: all bound at once (so they differ), then
 * released for the children to bind. Another program could take one in between; unlikely on a laptop,
 * and the child would fail loudly.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => listen(0)));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map(close));
  return ports;
}
