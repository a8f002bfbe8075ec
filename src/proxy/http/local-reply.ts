// Writes the proxy's own responses (see ../errors.ts): `x-weft-error: <code>`, a text/plain body
// `<code>: <detail>\n`, and a count in weft_local_replies_total{direction,code}.
// gRPC seam: a listener given a `grpcShape` answers gRPC requests (ProxyRequest.grpc) with what it
// returns — a trailers-only gRPC response (HTTP 200, grpc-status, grpc-message, x-weft-error) — so a
// gRPC client reads the reason instead of failing to parse a text body. Without one (today), every
// reply is HTTP-shaped. The listeners set it to ../grpc/local-reply.ts grpcReplyShape.

import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { STATUS_CODES } from "node:http";
import { LOCAL_REPLIES, type LocalReply, type LocalReplyCode } from "../errors.ts";
import type { CounterSeries } from "../metrics/families.ts";
import type { Direction, ProxyMetrics } from "../metrics/registry.ts";
import type { ResponseHeadFacts } from "./response-head.ts";

const MAX_DETAIL = 300;
const kClosing = Symbol("weft.connectionClosing");

/**
 * The connection ends after a response already decided (a refusal with `Connection: close`, or a
 * request that asked for close): requests pipelined behind it — already parsed by Node — must not
 * be forwarded (RFC 9112 §9.6; a parser that framed the refused request differently could read them
 * as its body).
 */
export function connectionClosing(socket: Socket | null): boolean {
  return (socket as (Socket & { [kClosing]?: boolean }) | null)?.[kClosing] === true;
}

export function markConnectionClosing(socket: Socket | null): void {
  if (socket !== null) (socket as Socket & { [kClosing]?: boolean })[kClosing] = true;
}

/**
 * The headers of a gRPC-shaped local reply (sent with HTTP status 200 and no body): grpc-status,
 * grpc-message and x-weft-error at least. Written by the gRPC support (../grpc/).
 */
export type GrpcReplyShape = (reply: LocalReply) => string[];

/** Notes the grpc-status of a shaped reply's headers (for the grpc_status metric label). */
export function noteGrpcReplyStatus(headers: readonly string[], f: ResponseHeadFacts): void {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === "grpc-status") f.grpcStatus = headers[i + 1];
}

function bodyOf(code: LocalReplyCode, detail: string): string {
  const d = detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL)}…` : detail;
  return `${code}: ${d.replace(/[\r\n]+/g, " ")}\n`;
}

/** One per listener: sends local replies and counts them, with counters bound per code. */
export class LocalReplies {
  readonly direction: Direction;
  readonly #metrics: ProxyMetrics;
  readonly #counters = new Map<LocalReplyCode, CounterSeries>();

  /** How replies to gRPC requests look; undefined: HTTP-shaped like every other. */
  readonly grpcShape: GrpcReplyShape | undefined;

  constructor(metrics: ProxyMetrics, direction: Direction, grpcShape?: GrpcReplyShape) {
    this.#metrics = metrics;
    this.direction = direction;
    this.grpcShape = grpcShape;
  }

  count(code: LocalReplyCode): void {
    let c = this.#counters.get(code);
    if (c === undefined)
      this.#counters.set(code, (c = this.#metrics.localReplies.series(this.direction, code)));
    c.value++;
  }

  /**
   * Answers `res` with a local reply; returns the status sent. `close` ends the connection afterwards
   * (malformed requests, or a request body we will not read). If the response has already started,
   * the only honest thing left is to abort it, so the client cannot mistake it for a complete one.
   */
  send(res: ServerResponse, code: LocalReplyCode, detail: string, close = false, status?: number): number {
    return this.sendReply(res, { code, status: status ?? LOCAL_REPLIES[code].status, detail }, close);
  }

  /**
   * As send(), with extra headers (Retry-After); shaped for gRPC when `grpc` (the exchange, which
   * then notes the reply's grpc-status) is given and a shape is set.
   */
  sendReply(
    res: ServerResponse,
    reply: LocalReply,
    close: boolean,
    extra?: string[],
    grpc?: ResponseHeadFacts,
  ): number {
    const { code, detail } = reply;
    let st = reply.status;
    this.count(code);
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return st;
    }
    // res.socket is null while the response waits behind earlier pipelined ones: use the request's.
    if (close) markConnectionClosing(res.req.socket);
    let headers: string[];
    let body: string | undefined;
    if (grpc !== undefined && this.grpcShape !== undefined) {
      st = 200;
      headers = this.grpcShape(reply);
      noteGrpcReplyStatus(headers, grpc);
      headers.push("content-length", "0");
    } else {
      body = bodyOf(code, detail);
      headers = [
        "x-weft-error",
        code,
        "content-type",
        "text/plain; charset=utf-8",
        "content-length",
        String(Buffer.byteLength(body)),
      ];
    }
    if (extra !== undefined) for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
    if (close) headers.push("connection", "close");
    res.sendDate = true;
    res.writeHead(st, headers);
    res.end(res.req.method === "HEAD" ? undefined : body);
    return st;
  }

  /** For parser-level errors ('clientError'), where no ServerResponse exists: write bytes and close. */
  writeRaw(socket: Socket, code: LocalReplyCode, detail: string): number {
    this.count(code);
    const st = LOCAL_REPLIES[code].status;
    const body = bodyOf(code, detail);
    socket.end(
      `HTTP/1.1 ${st} ${STATUS_CODES[st] ?? "Error"}\r\n` +
        `x-weft-error: ${code}\r\n` +
        "content-type: text/plain; charset=utf-8\r\n" +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        "connection: close\r\n\r\n" +
        body,
    );
    return st;
  }
}
