// The HTTP edges an attacker reaches, in-process, all in front of one raw app (raw-app.ts) that
// records the exact requests it receives: the outbound listener on an --upstream port (plaintext,
// every Host goes to the app), the inbound listener over mTLS (STRICT), and an inbound listener in
// PERMISSIVE mode spoken to in plaintext. Used by the smuggling catalogue and the differential fuzzer.

import net from "node:net";
import tls from "node:tls";
import { createTestCa, sid, type TestCa } from "./certs.ts";
import { startInbound, startOutbound, type Running } from "./harness.ts";
import { startRawApp, type RawApp } from "./raw-app.ts";
import { buildSnapshot } from "./snapshots.ts";
import type { InboundListener } from "../inbound/listener.ts";
import type { OutboundListener } from "../outbound/listener.ts";
import type { EdgeLimits } from "../http/server-edge.ts";

export type EdgeName = "outbound" | "inbound-mtls" | "inbound-permissive";
export const EDGES: EdgeName[] = ["outbound", "inbound-mtls", "inbound-permissive"];

export interface EdgeReply {
  /** Everything received, latin1. */
  text: string;
  /** Status codes of every response in `text`, in order (1xx included). */
  statuses: number[];
  /** The server closed the connection (rather than our deadline ending the wait). */
  closedByServer: boolean;
}

export interface SendOptions {
  waitMs?: number;
  responses?: number;
  halfClose?: boolean;
}

export interface EdgeTargets {
  app: RawApp;
  outbound: Running<OutboundListener>;
  inbound: Running<InboundListener>;
  permissive: Running<InboundListener>;
  /**
   * Sends `bytes` on a new connection to `edge` and collects the reply until the server closes, or
   * `opts.responses` complete final responses arrived, or `opts.waitMs` (default 3 s) passed. With
   * `opts.halfClose` the client shuts down its side after sending: the proxy then treats it as gone
   * (what it already forwarded is still checked at the app), so the exchange ends at once.
   */
  send(edge: EdgeName, bytes: Buffer, opts?: SendOptions): Promise<EdgeReply>;
  close(): Promise<void>;
}

export async function startEdgeTargets(limits?: EdgeLimits): Promise<EdgeTargets> {
  const ca: TestCa = await createTestCa();
  const app = await startRawApp();
  const services = [{ name: "app", endpoints: [{ port: app.port }] }];
  const proxy = { service: "app", namespace: "default", identity: sid("app") };
  const serverMaterial = await ca.material(sid("app"));
  const client = await ca.material(sid("web"));
  const outbound = await startOutbound(buildSnapshot({ services }), { upstream: "app", limits });
  const inbound = await startInbound(buildSnapshot({ appPort: app.port, proxy }), serverMaterial, { limits });
  const permissive = await startInbound(
    // The app's port declared HTTP: non-HTTP bytes are parsed (and refused), never passed through.
    buildSnapshot({
      appPort: app.port,
      proxy,
      mtlsMode: "PERMISSIVE",
      inboundPorts: [{ port: 80, appPort: app.port, protocol: "http" }],
    }),
    serverMaterial,
    { limits },
  );
  const clientTls: tls.ConnectionOptions = {
    key: client.keyPem,
    cert: client.certChainPem,
    ca: client.trustBundlePem,
    checkServerIdentity: () => undefined,
  };
  const portOf = {
    outbound: outbound.port,
    "inbound-mtls": inbound.port,
    "inbound-permissive": permissive.port,
  };

  function send(edge: EdgeName, bytes: Buffer, opts: SendOptions = {}): Promise<EdgeReply> {
    return new Promise((resolve) => {
      const port = portOf[edge];
      const socket =
        edge === "inbound-mtls"
          ? tls.connect({ host: "127.0.0.1", port, ...clientTls })
          : net.connect(port, "127.0.0.1");
      const chunks: Buffer[] = [];
      let closedByServer = false;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        const text = Buffer.concat(chunks).toString("latin1");
        resolve({ text, statuses: statusesOf(text), closedByServer });
      };
      const timer = setTimeout(finish, opts.waitMs ?? 3_000);
      socket.on("data", (d: Buffer) => {
        chunks.push(d);
        if (opts.responses === undefined) return;
        const statuses = statusesOf(Buffer.concat(chunks).toString("latin1"), true);
        if (statuses.filter((st) => st >= 200).length >= opts.responses) finish();
      });
      socket.on("end", () => {
        closedByServer = true;
        finish();
      });
      socket.on("close", () => {
        closedByServer = true;
        finish();
      });
      socket.on("error", () => {});
      socket.once(edge === "inbound-mtls" ? "secureConnect" : "connect", () =>
        opts.halfClose ? socket.end(bytes) : socket.write(bytes),
      );
    });
  }

  return {
    app,
    outbound,
    inbound,
    permissive,
    send,
    close: async () => {
      await Promise.all([outbound.close(), inbound.close(), permissive.close()]);
      await app.close();
      await ca.cleanup();
    },
  };
}

/**
 * Status codes of the responses in a byte stream of HTTP/1.1 responses (bodies skipped by length).
 * `completeOnly`: leave out a last response whose body has not fully arrived.
 */
export function statusesOf(text: string, completeOnly = false): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < text.length) {
    const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text.slice(pos, pos + 200));
    if (m === null) break;
    const status = Number(m[1]);
    out.push(status);
    const end = text.indexOf("\r\n\r\n", pos);
    if (end === -1) break;
    const head = text.slice(pos, end);
    pos = end + 4;
    if (status < 200) continue;
    const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (cl !== null) {
      pos += Number(cl[1]);
      if (completeOnly && pos > text.length) out.pop();
    } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      const last = text.indexOf("\r\n0\r\n\r\n", pos);
      if (last === -1) break;
      pos = last + 7;
    } else break;
  }
  return out;
}
