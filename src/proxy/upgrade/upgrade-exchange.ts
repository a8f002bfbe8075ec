// The exchange of an Upgrade request (WebSocket, ...): the HTTP/1.1 edge's exchange (../http/
// h1-exchange.ts) on the bare socket Node's 'upgrade' event hands over, so that the listeners serve
// it like any request — same head checks, routing, route filters, rate limit and local replies —
// until the forward, where it goes on a dedicated connection (tunnel.ts) instead of a pool.
// Everything that ends it before the forward (a local reply, a redirect) is counted as a refused
// upgrade and closes the connection once written: after an upgrade request, what the client sends
// next belongs to the protocol it asked for, never to HTTP/1.1.

import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { H1Exchange } from "../http/h1-exchange.ts";
import type { HttpEdge } from "../http/server-edge.ts";
import type { StatsByCode } from "../metrics/registry.ts";
import type { Exchange } from "../pipeline/exchange.ts";
import { clientResponse, closeAfterResponse } from "./tunnel.ts";
import { protocolOf, upgradeBodyRefusal, type UpgradeProtocol } from "./upgrade-head.ts";

export class UpgradeExchange extends H1Exchange {
  /** The client's connection, detached from Node's HTTP parser. */
  readonly socket: Socket;
  /** Bytes the client sent after the request head (held back until a 101). */
  readonly clientHead: Buffer;
  readonly protocol: UpgradeProtocol;
  /** weft_upgrades_total's destination_service for a refusal; routing sets it as it learns it. */
  destination = "unknown";
  /** True once the tunnel (tunnel.ts) took over: it counts its own outcome from then on. */
  forwarded = false;
  readonly #refused: (x: UpgradeExchange) => void;

  constructor(
    req: IncomingMessage,
    socket: Socket,
    clientHead: Buffer,
    edge: HttpEdge,
    stats: StatsByCode,
    refused: (x: UpgradeExchange) => void,
  ) {
    super(req, clientResponse(req, socket), edge, stats);
    this.socket = socket;
    this.clientHead = clientHead;
    this.protocol = protocolOf(req.headers.upgrade);
    this.#refused = refused;
    this.onEnd = endBeforeForward;
  }

  /** Reads the request like any other (H1Exchange.readRequest), and refuses a body (→ 400). */
  readUpgrade(httpsRefusal: string | undefined): boolean {
    if (!this.readRequest(httpsRefusal)) return false;
    const bad = upgradeBodyRefusal(this);
    if (bad === undefined) return true;
    this.reply("bad_request", bad, true);
    return false;
  }

  /** Counts a refusal and closes the client connection once the answer is written. */
  refuse(): void {
    this.#refused(this);
    closeAfterResponse(this.res, this.socket);
  }

  /** The tunnel takes over (it counts the outcome and closes the connection itself). */
  takeOver(): void {
    this.forwarded = true;
    this.onEnd = undefined;
  }
}

/** An upgrade answered before its forward: counted as refused, connection closed once written. */
function endBeforeForward(x: Exchange): void {
  const u = x as UpgradeExchange;
  if (u.forwarded) return;
  if (u.socket.destroyed) return; // the client left (during a fault delay): nothing was answered
  u.refuse();
}
