// The HTTP/1.1 edge's side of an exchange: the request record read from Node's IncomingMessage
// (request line, raw headers), and the Downstream contract (../pipeline/downstream.ts) written on
// its ServerResponse. Event listeners are module-level functions that find their exchange through a
// symbol on the response, so a request costs this one object and no closures.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { LocalReply } from "../errors.ts";
import type { StatsByCode } from "../metrics/registry.ts";
import { Exchange, OPEN } from "../pipeline/exchange.ts";
import { markConnectionClosing } from "./local-reply.ts";
import { checkRequestHead, scanRequestHeaders } from "./request-head.ts";
import { parseAbsoluteForm } from "./request-target.ts";
import { trailersObject } from "./response-head.ts";
import type { HttpEdge } from "./server-edge.ts";

const kExchange = Symbol("weft.exchange");
type TaggedResponse = ServerResponse & { [kExchange]?: H1Exchange };

/** The exchange a response belongs to, once the pipeline watches its client. */
export function exchangeOf(res: ServerResponse): Exchange | undefined {
  return (res as TaggedResponse)[kExchange];
}

function onResponseClose(this: TaggedResponse): void {
  this[kExchange]?.clientGone();
}

function onResponseDrain(this: TaggedResponse): void {
  this[kExchange]?.resumeUpstream();
}

export class H1Exchange extends Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly edge: HttpEdge;
  #drainHooked = false;

  constructor(req: IncomingMessage, res: ServerResponse, edge: HttpEdge, stats: StatsByCode) {
    super(req.method as string, edge.tls ? "https" : "http", stats, edge.events);
    this.req = req;
    this.res = res;
    this.edge = edge;
    this.clientAddress = req.socket.remoteAddress;
  }

  /**
   * Reads the request target and head into the record, and refuses what cannot be forwarded (the
   * reply is sent here; returns false then). `httpsRefusal`: the detail for an https:// absolute-form
   * target (501), or undefined to count it as malformed.
   */
  readRequest(httpsRefusal: string | undefined): boolean {
    const req = this.req;
    const url = req.url as string;
    let absoluteForm = false;
    if (url.charCodeAt(0) === 47 /* / */) {
      this.target = url;
    } else {
      const abs = parseAbsoluteForm(url);
      if ("error" in abs) {
        if (abs.error === "https" && httpsRefusal !== undefined) {
          this.reply("unsupported", httpsRefusal);
          return false;
        }
        this.reply("bad_request", "malformed request target", true);
        return false;
      }
      absoluteForm = true;
      this.authority = abs.authority;
      this.target = abs.target;
    }
    scanRequestHeaders(req.rawHeaders, this.headers, this);
    const bad = checkRequestHead(req, this, absoluteForm);
    if (bad !== undefined) {
      this.reply("bad_request", bad, true);
      return false;
    }
    if (this.hasBody) this.body = req;
    // Upgrades that become tunnels come here from ../upgrade/ (the edge's 'upgrade' event); the
    // others (h2c, or Upgrade without Connection: upgrade) are served as plain HTTP/1.1 with Upgrade
    // removed. Node's parser stops reading after a request that asks for an upgrade, silently
    // dropping what follows: this response is the connection's last.
    if (this.upgrade !== undefined) this.closeAfterResponse();
    return true;
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(",") : v;
  }

  // --- Downstream ---

  get draining(): boolean {
    return this.edge.draining;
  }

  sendHead(status: number, headers: string[]): boolean {
    if (this.edge.draining) headers.push("connection", "close");
    const res = this.res;
    // A forwarded response carries the upstream's Date; the proxy's own (a redirect) gets Node's.
    res.sendDate = this.state !== OPEN;
    try {
      res.writeHead(status, headers);
    } catch {
      return false; // a header Node refuses to write (invalid characters): nothing was sent
    }
    return true;
  }

  write(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    if (!this.#drainHooked) {
      this.#drainHooked = true;
      this.res.on("drain", onResponseDrain);
    }
    return false;
  }

  end(trailers: (Buffer | string)[] | null): void {
    const res = this.res;
    if (trailers !== null && trailers.length > 0) {
      const t = trailersObject(trailers, this);
      if ((res as ServerResponse & { chunkedEncoding?: boolean }).chunkedEncoding) res.addTrailers(t);
    }
    res.end();
  }

  abort(): void {
    this.res.destroy();
  }

  sendLocalReply(reply: LocalReply, close: boolean, headers: string[] | undefined): number {
    return this.edge.replies.sendReply(this.res, reply, close, headers, this.grpc ? this : undefined);
  }

  watchClient(): void {
    const res = this.res as TaggedResponse;
    if (res[kExchange] === this) return;
    res[kExchange] = this;
    res.on("close", onResponseClose);
  }

  discardBody(): void {
    if (this.hasBody && !this.req.complete) this.req.resume();
  }

  clientOpen(): boolean {
    const socket = this.req.socket;
    return socket !== null && !socket.destroyed && !socket.writableEnded;
  }

  closeAfterResponse(): void {
    this.res.shouldKeepAlive = false;
    markConnectionClosing(this.req.socket);
  }
}
