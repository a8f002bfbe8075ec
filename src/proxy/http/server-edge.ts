// The HTTP/1.1 server edge shared by both listeners: a node:http (or https) server with hardened
// limits, and the "rescue" for what never becomes a request — parser errors ('clientError'),
// CONNECT — answered with local replies. The listener's handler gets every well-formed request.
// The proxy must never crash on request bytes: every socket gets an error handler.

import http from "node:http";
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { LocalReplyCode } from "../errors.ts";
import type { LocalReplies } from "./local-reply.ts";

export interface EdgeLimits {
  /** Largest request head (request line + headers) accepted; larger → 431. Default 16 KiB. */
  maxHeaderSize?: number;
  /** How long a client may take to send a request head (ms). Default 30 s. */
  headersTimeoutMs?: number;
  /** Idle keep-alive on client connections (ms). Default 65 s: longer than the clients' pools. */
  keepAliveTimeoutMs?: number;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

const DEFAULT_MAX_HEADER_SIZE = 16 * 1024;

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

export class HttpEdge {
  readonly server: http.Server;
  readonly replies: LocalReplies;
  /** Set while draining: responses carry Connection: close. */
  draining = false;

  constructor(
    opts: { replies: LocalReplies; handler: RequestHandler; tls?: https.ServerOptions } & EdgeLimits,
  ) {
    this.replies = opts.replies;
    const options: http.ServerOptions = {
      maxHeaderSize: opts.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE,
      // We check Host ourselves (request-head.ts) so the 400 is a local reply like every other.
      requireHostHeader: false,
      // Bodiless requests skip the stream machinery of IncomingMessage.
      optimizeEmptyRequests: true,
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
      headersTimeout: opts.headersTimeoutMs ?? 30_000,
      // Bodies stream for as long as they flow; a whole-request deadline would cut large uploads.
      requestTimeout: 0,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 65_000,
      noDelay: true,
    };
    const handler = opts.handler;
    const replies = opts.replies;
    // The rescue of last resort: a throw while handling one request must not end the process.
    const guarded: RequestHandler = (req, res) => {
      try {
        handler(req, res);
      } catch (err) {
        process.emitWarning(err as Error, { code: "WEFT_PROXY_BUG" });
        replies.send(res, "internal_error", "the proxy failed on this request", true);
      }
    };
    this.server = opts.tls
      ? (https.createServer({ ...opts.tls, ...options }, guarded) as unknown as http.Server)
      : http.createServer(options, guarded);
    this.server.on("clientError", (err, socket) => this.#onClientError(err, socket as Socket));
    this.server.on("connect", (_req: IncomingMessage, socket: Socket) => {
      socket.on("error", ignoreError);
      this.replies.writeRaw(
        socket,
        "unsupported",
        "CONNECT is not supported; send http:// requests to this proxy",
      );
    });
  }

  #onClientError(err: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
    socket.on("error", ignoreError);
    // A response already on the wire cannot be followed by another: cut the connection.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [code, detail] = parserErrorReply(err);
    this.replies.writeRaw(socket, code, detail);
    socket.destroySoon();
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
