// The HTTP/1.1 server edge shared by both listeners: a node:http (or https) server with hardened
// limits, and the "rescue" for what never becomes a request — parser errors ('clientError'),
// CONNECT — answered with local replies. The listener's handler gets every well-formed request.
// The proxy must never crash on request bytes: every socket gets an error handler.

import http from "node:http";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { LOCAL_REPLIES, type LocalReplyCode } from "../errors.ts";
import { connectionClosing, markConnectionClosing, type LocalReplies } from "./local-reply.ts";
import { DONE } from "../pipeline/exchange.ts";
import { RequestEvents } from "../pipeline/events.ts";
import { requestMetrics } from "../pipeline/request-metrics.ts";
import { exchangeOf } from "./h1-exchange.ts";

export interface EdgeLimits {
  /** Largest request head (request line + headers) accepted; larger → 431. Default 16 KiB. */
  maxHeaderSize?: number;
  /**
   * How long a client may take to send a request head (ms). Default 30 s, enforced to within
   * HEADERS_CHECK_MS (Node only looks every `connectionsCheckingInterval`, 30 s by default).
   */
  headersTimeoutMs?: number;
  /**
   * How long a TLS handshake may take, and (inbound) how long a new connection may stay silent
   * before its first byte (ms). Default 10 s: a peer that sends one byte and stops is cut then.
   */
  handshakeTimeoutMs?: number;
  /** Idle keep-alive on client connections (ms). Default 65 s: longer than the clients' pools. */
  keepAliveTimeoutMs?: number;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;
export type ConnectHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => void;
/** An Upgrade request (see ../upgrade/): the socket is the client's, detached from the HTTP parser. */
export type UpgradeHandler = ConnectHandler;

const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;
export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** How often Node's server looks for connections past headersTimeout: the bound's precision. */
const HEADERS_CHECK_MS = 250;

function parserErrorReply(err: NodeJS.ErrnoException & { reason?: string }): [LocalReplyCode, string] {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return ["headers_too_large", "request headers exceed the listener's limit"];
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return ["bad_request", "chunk extensions too large"];
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return ["request_timeout", "request headers not received in time"];
    default:
      return ["bad_request", `malformed request (${err.reason ?? err.code ?? "parse error"})`];
  }
}

function ignoreError(): void {}

function markSecure(socket: Socket): void {
  (socket as EdgeSocket)[kSecure] = true;
}

const kAnswered = Symbol("weft.answered");
const kSecure = Symbol("weft.secure");
const kLastResponse = Symbol("weft.lastResponse");
const kPreviousResponse = Symbol("weft.previousResponse");
const LINGER_MS = 2_000;

type EdgeSocket = Socket & {
  [kAnswered]?: boolean;
  /** TLS edges: the handshake completed (before that, nothing HTTP can be written). */
  [kSecure]?: boolean;
  /** The responses of the requests the parser handed over last, and the one before. */
  [kLastResponse]?: ServerResponse;
  [kPreviousResponse]?: ServerResponse;
  /** The response on the wire now (Node's; the next pipelined one is attached when it finishes). */
  _httpMessage?: ServerResponse | null;
};

interface PendingReply {
  edge: HttpEdge;
  socket: EdgeSocket;
  code: LocalReplyCode;
  detail: string;
  /** The request whose body was malformed: it gets no response of its own. */
  cancelled: ServerResponse | undefined;
  written?: boolean;
}

/**
 * Writes the parser error's local reply once every response before it has gone out (pipelining:
 * the client must get the answers to the requests the app processed, then the refusal), then closes.
 * Responses leave in request order, so waiting for the last one before the refusal is enough.
 */
function answerAfterInFlight(p: PendingReply): void {
  const socket = p.socket;
  const before = p.cancelled === undefined ? socket[kLastResponse] : socket[kPreviousResponse];
  if (before === undefined || before.writableFinished || before.destroyed) return writeReply(p);
  // Ahead of Node's own 'finish' listener, which ends the connection when the client half-closed.
  before.prependOnceListener("finish", () => writeReply(p));
  before.once("close", () => writeReply(p));
}

function writeReply(p: PendingReply): void {
  if (p.written) return;
  p.written = true;
  if (p.socket.destroyed || !p.socket.writable) return;
  p.edge.replies.writeRaw(p.socket, p.code, p.detail);
  lingeringClose(p.socket);
}

/**
 * Ends our side after the reply and keeps reading (and discarding) what the client is still sending
 * until it closes, at most LINGER_MS. Closing outright while its bytes are in flight makes the kernel
 * send a reset, which wipes our reply from the client's receive buffer before it reads it.
 */
export function lingeringClose(socket: Socket): void {
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  socket.resume();
}

export class HttpEdge {
  readonly server: http.Server;
  readonly replies: LocalReplies;
  /** The listener's request observers (../pipeline/events.ts); the request metrics by default. */
  readonly events: RequestEvents;
  /** Set while draining: responses carry Connection: close. */
  draining = false;
  readonly #tls: boolean;
  readonly #decrypted: boolean;

  /** A TLS edge (the inbound mTLS listener): requests arrive with scheme https. */
  get tls(): boolean {
    return this.#tls || this.#decrypted;
  }

  constructor(
    opts: {
      replies: LocalReplies;
      events?: RequestEvents;
      handler: RequestHandler;
      /** CONNECT requests; refused with 501 unsupported when absent. */
      onConnect?: ConnectHandler;
      /**
       * Upgrade requests that `isUpgrade` accepts; without it, an Upgrade request is an ordinary one
       * (the listener refuses or strips it).
       */
      onUpgrade?: UpgradeHandler;
      isUpgrade?: (req: IncomingMessage) => boolean;
      tls?: https.ServerOptions;
      /** Fed TLS connections already terminated elsewhere (inbound/tls-front.ts): scheme https. */
      decrypted?: boolean;
    } & EdgeLimits,
  ) {
    this.replies = opts.replies;
    this.events = opts.events ?? new RequestEvents([requestMetrics]);
    const options: http.ServerOptions = {
      maxHeaderSize: opts.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE,
      // We check Host ourselves (request-head.ts) so the 400 is a local reply like every other.
      requireHostHeader: false,
      // Bodiless requests skip the stream machinery of IncomingMessage.
      optimizeEmptyRequests: true,
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
      headersTimeout: opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(
        HEADERS_CHECK_MS,
        opts.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      ),
      // Bodies stream for as long as they flow; a whole-request deadline would cut large uploads.
      requestTimeout: 0,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 65_000,
      noDelay: true,
      shouldUpgradeCallback: opts.onUpgrade === undefined ? () => false : opts.isUpgrade,
    };
    const handler = opts.handler;
    const replies = opts.replies;
    // The rescue of last resort: a throw while handling one request must not end the process.
    const guarded: RequestHandler = (req, res) => {
      const s = req.socket as EdgeSocket;
      // Pipelined behind a request refused with, or asking for, `Connection: close`: never handled.
      if (connectionClosing(s)) return;
      if (!res.shouldKeepAlive) markConnectionClosing(s);
      s[kPreviousResponse] = s[kLastResponse];
      s[kLastResponse] = res;
      try {
        handler(req, res);
      } catch (err) {
        process.emitWarning(err as Error, { code: "WEFT_PROXY_BUG" });
        replies.send(res, "internal_error", "the proxy failed on this request", true);
      }
    };
    this.server = opts.tls
      ? (https.createServer(
          {
            ...opts.tls,
            ...options,
            handshakeTimeout: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
          },
          guarded,
        ) as unknown as http.Server)
      : http.createServer(options, guarded);
    // Expect: 100-continue. Node writes the interim 100 at once, but for a request pipelined behind
    // another that 100 is queued, and Node then puts the final response's head in front of it (its
    // head goes to the front of the queue when the first body chunk is a Buffer) — the client would
    // read "100 Continue" as body. A pipelined client has sent its body already: it gets no 100.
    this.server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
      if ((req.socket as EdgeSocket)._httpMessage === res) res.writeContinue();
      guarded(req, res);
    });
    // Node answers an unknown expectation with a bare 417; make it a local reply like the others.
    this.server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
      replies.send(
        res,
        "unsupported",
        `Expect: ${JSON.stringify(req.headers.expect)} is not supported (only 100-continue)`,
        true,
        417,
      );
    });
    this.#tls = opts.tls !== undefined;
    this.#decrypted = opts.decrypted === true;
    if (this.#tls) this.server.on("secureConnection", markSecure);
    this.server.on("clientError", (err, socket) => this.#onClientError(err, socket as Socket));
    this.server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      socket.on("error", ignoreError);
      if (opts.onConnect) {
        try {
          return opts.onConnect(req, socket, head);
        } catch (err) {
          process.emitWarning(err as Error, { code: "WEFT_PROXY_BUG" });
          return socket.destroy();
        }
      }
      this.replies.writeRaw(socket, "unsupported", "CONNECT is not supported on this listener");
      lingeringClose(socket);
    });
    const onUpgrade = opts.onUpgrade;
    if (onUpgrade !== undefined) {
      this.server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
        socket.on("error", ignoreError);
        try {
          onUpgrade(req, socket, head);
        } catch (err) {
          process.emitWarning(err as Error, { code: "WEFT_PROXY_BUG" });
          socket.destroy();
        }
      });
    }
  }

  #onClientError(err: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
    const s = socket as EdgeSocket;
    // Already answered: the parser keeps failing on the bytes we are discarding while lingering.
    if (s[kAnswered]) return;
    socket.on("error", ignoreError);
    s[kAnswered] = true;
    // Bytes after a request that asked for Connection: close: Node closes after that response.
    if (err.code === "HPE_CLOSED_CONNECTION") return;
    // A failed or timed-out TLS handshake (https turns tlsClientError into clientError).
    if (this.#tls && s[kSecure] !== true) {
      socket.destroy();
      return;
    }
    if (err.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    // The error belongs to the last request the parser started when that one's body is unfinished
    // (a bad chunk): it is cancelled upstream. Otherwise it is a request the parser could not read
    // at all, pipelined after the ones already handed over.
    const last = s[kLastResponse];
    let cancelled: ServerResponse | undefined;
    if (last !== undefined && !last.writableFinished && !last.req.complete) {
      // Already refused by the listener (its 400 with Connection: close is queued or on the wire):
      // that reply stands, and the connection closes after it. A request that is still under way
      // (the client asked for Connection: close, then its body broke off) is cancelled below.
      const x = exchangeOf(last);
      if (connectionClosing(socket) && (x === undefined || x.state === DONE)) return;
      // Its response already started: another cannot follow it, cut the connection.
      if (last.headersSent) {
        socket.destroy();
        return;
      }
      cancelled = last;
    }
    const [code, detail] = parserErrorReply(err);
    const reply: PendingReply = { edge: this, socket: s, code, detail, cancelled };
    if (cancelled !== undefined) exchangeOf(cancelled)?.abandon(LOCAL_REPLIES[code].status);
    // Requests before the bad one were handed to the app: their responses go first, in order.
    answerAfterInFlight(reply);
  }

  /** Connections handed over by a front server (see inbound) need the server's tracking started. */
  adoptConnections(): void {
    this.server.emit("listening");
  }

  closeIdleConnections(): void {
    this.server.closeIdleConnections();
  }

  closeAllConnections(): void {
    this.server.closeAllConnections();
  }
}
