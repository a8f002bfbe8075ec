// Apps behind a sidecar for the upgrade tests (../upgrade/): a `ws` WebSocket echo server, and a raw
// HTTP server whose 'upgrade' handler the test writes. Both count the upgraded connections they have
// open, so a test can prove that nothing leaks when the client goes away.

import http from "node:http";
import { once } from "node:events";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";

export interface UpgradeApp {
  port: number;
  /** Upgrade requests the app received (headers as the app saw them). */
  upgrades: http.IncomingMessage[];
  /** Upgraded connections open now. */
  open(): number;
  /** Resolves once no upgraded connection is open. */
  allClosed(): Promise<void>;
  close(): Promise<void>;
}

function tracker() {
  const live = new Set<Socket>();
  let waiters: (() => void)[] = [];
  return {
    add(s: Socket) {
      live.add(s);
      s.once("close", () => {
        live.delete(s);
        if (live.size === 0) for (const w of waiters.splice(0)) w();
      });
    },
    open: () => live.size,
    allClosed: () =>
      live.size === 0 ? Promise.resolve() : new Promise<void>((r) => (waiters = [...waiters, r])),
    destroyAll: () => {
      for (const s of live) s.destroy();
    },
  };
}

async function listen(server: http.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** Echoes every message back (binary stays binary); `refuse` answers the handshake with that status. */
export async function startWsEcho(opts: { refuse?: number } = {}): Promise<UpgradeApp> {
  const server = http.createServer((_req, res) => res.end("not a websocket request\n"));
  const t = tracker();
  const upgrades: http.IncomingMessage[] = [];
  const wss = new WebSocketServer({
    server,
    maxPayload: 64 * 1024 * 1024,
    verifyClient: (_info, cb) => (opts.refuse ? cb(false, opts.refuse, "refused by the app") : cb(true)),
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: Socket) => {
    upgrades.push(req);
    t.add(socket);
  });
  wss.on("connection", (ws: WebSocket) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const port = await listen(server);
  return {
    port,
    upgrades,
    open: t.open,
    allClosed: t.allClosed,
    close: async () => {
      t.destroyAll();
      wss.close();
      server.close();
    },
  };
}

/** An app whose upgrade handling the test writes; plain requests get 200 "plain". */
export async function startRawUpgradeApp(
  onUpgrade: (req: http.IncomingMessage, socket: Socket, head: Buffer) => void,
): Promise<UpgradeApp & { requests: http.IncomingMessage[] }> {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    req.resume();
    res.end("plain");
  });
  const t = tracker();
  const upgrades: http.IncomingMessage[] = [];
  server.on("upgrade", (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    upgrades.push(req);
    t.add(socket);
    socket.on("error", () => {});
    onUpgrade(req, socket, head);
    // A handler that reads nothing: the app closes when the proxy does (the server is half-open).
    if (socket.listenerCount("data") === 0) {
      socket.on("end", () => socket.end());
      socket.resume();
    }
  });
  const port = await listen(server);
  return {
    port,
    requests,
    upgrades,
    open: t.open,
    allClosed: t.allClosed,
    close: async () => {
      t.destroyAll();
      server.closeAllConnections();
      server.close();
    },
  };
}

/** The 101 a plain upgrade app answers with. */
export const SWITCHING = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n";
