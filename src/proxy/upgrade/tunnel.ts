// One Upgrade request forwarded on a dedicated upstream connection, then — if the upstream answers
// 101 — the tunnel: bytes piped both ways until either side closes. Both listeners use it (outbound to
// a server sidecar over mTLS, inbound to the app in plaintext); they decide where it goes, this file
// decides what happens on the wire.
//
// Order of events:
//   connect (a fresh connection: never a pooled one, the upgrade keeps it) ─ fails before writing ─▶
//     hooks.notSent (the caller may try another endpoint) or a local reply (errors.ts)
//   → write the request head (built by the caller from the parsed facts, like any forwarded request)
//   → wait for the response head (the response-headers timeout as for requests ─▶ 504 timeout)
//   → 101: write the 101 head to the client, then the bytes either side sent early (the client's
//     `head` from Node's 'upgrade' event is held back until now: had the upstream refused, they would
//     have been read as a new request), then pipe with back-pressure. Half-close is passed on (FIN in
//     one direction, the other keeps flowing); an error or a close on either side destroys both; no
//     bytes either way for `idleMs` closes both.
//   → any other status: forwarded as an ordinary response through the exchange (hop-by-hop headers,
//     Upgrade included, removed) with Connection: close; no tunnel.
// The client leaving at any point destroys the upstream connection.

import http from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { H1Exchange } from "../http/h1-exchange.ts";
import { DONE } from "../pipeline/exchange.ts";
import type { LocalReplyCode } from "../errors.ts";
import { WeftError } from "../errors.ts";
import type { Connector } from "../transport/connector.ts";
import { requestNotSent } from "../transport/upstream.ts";
import { switchingProtocolsHead } from "./upgrade-head.ts";
import type { UpgradeStats } from "./upgrade-stats.ts";
import type { Tunnels } from "./tunnels.ts";

/** Default for an upgraded connection with no bytes either way: an hour, as Envoy's stream idle default is long. */
export const DEFAULT_UPGRADE_IDLE_MS = 3_600_000;

export interface TunnelTarget {
  connect: Connector;
  /** Request head: method, origin-form target, headers (flat name/value list, Host first). */
  method: string;
  path: string;
  headers: string[];
  /** Wait for the response head (ms); 0: no limit. */
  responseHeadersMs: number;
}

export interface TunnelHooks {
  /** The connection failed before anything was written: true when the caller sent it elsewhere. */
  notSent(err: Error): boolean;
  /** Once, when the handshake ended: the upstream's status, or the local reply made instead. */
  answered(status: number, failure: LocalReplyCode | undefined): void;
  /** Once, when everything of this upgrade is closed (after answered). */
  closed(): void;
}

export interface TunnelOptions {
  idleMs: number;
  stats: UpgradeStats;
  tunnels: Tunnels;
  /** Timers, so tests can inject them (the response-headers wait). */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(t: unknown): void;
}

function ignoreError(): void {}

export class UpgradeForward {
  readonly #x: H1Exchange;
  readonly #client: Socket;
  readonly #clientHead: Buffer;
  readonly #hooks: TunnelHooks;
  readonly #opts: TunnelOptions;
  #upstream: Socket | undefined;
  #request: http.ClientRequest | undefined;
  #timer: unknown;
  #answered = false;
  #closed = false;

  constructor(x: H1Exchange, client: Socket, clientHead: Buffer, hooks: TunnelHooks, opts: TunnelOptions) {
    this.#x = x;
    this.#client = client;
    this.#clientHead = clientHead;
    this.#hooks = hooks;
    this.#opts = opts;
    // The client's response: back-pressure for a refusal's body (see Exchange.watchClient).
    x.watchClient();
    // The client leaving at any point: nothing more to do upstream.
    client.once("close", () => {
      if (!this.#answered) this.#answer(0, undefined);
      this.#destroyUpstream();
      this.#finish();
    });
  }

  /** Opens the upstream connection and sends the request head; may be called again after notSent. */
  start(target: TunnelTarget): void {
    target.connect(null, (err, socket) => {
      if (this.#answered || this.#closed) {
        socket?.destroy();
        return;
      }
      if (err !== null || socket === null) {
        const e = err ?? new WeftError("WEFT_ERR_UPSTREAM_CONNECT", "no connection", { requestSent: false });
        if (requestNotSent(e) && this.#hooks.notSent(e)) return;
        return this.#upstreamError(e);
      }
      const alpn = (socket as TLSSocket).alpnProtocol;
      if (typeof alpn === "string" && alpn !== "http/1.1") {
        socket.destroy();
        return this.#upstreamError(
          new WeftError("WEFT_ERR_UPSTREAM_TLS", `negotiated ALPN ${alpn}, an upgrade needs http/1.1`),
        );
      }
      this.#send(socket, target);
    });
  }

  #send(socket: Socket, target: TunnelTarget): void {
    this.#upstream = socket;
    socket.on("error", ignoreError);
    socket.allowHalfOpen = true;
    const headers = target.headers;
    // Node frames a bodiless POST/PUT... as chunked unless told its length: the tunnel would start
    // with a stray "0\r\n\r\n".
    if (target.method !== "GET" && !hasHeader(headers, "content-length")) headers.push("content-length", "0");
    let req: http.ClientRequest;
    try {
      req = http.request({
        method: target.method,
        path: target.path,
        headers,
        setHost: false,
        createConnection: () => socket,
      });
    } catch (err) {
      socket.destroy();
      return this.#upstreamError(err as Error);
    }
    this.#request = req;
    req.on("error", (err) => this.#upstreamError(err));
    req.on("upgrade", (res: http.IncomingMessage, up: Socket, upHead: Buffer) =>
      this.#switched(res, up, upHead),
    );
    req.on("response", (res: http.IncomingMessage) => this.#refused(res));
    if (target.responseHeadersMs > 0) {
      this.#timer = this.#opts.setTimer(() => {
        this.#timer = undefined;
        this.#upstreamError(
          new WeftError(
            "WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT",
            `sent no response headers within ${target.responseHeadersMs} ms`,
          ),
        );
      }, target.responseHeadersMs);
    }
    req.end();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#opts.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** Before the response head: a local reply from the cause. */
  #upstreamError(err: Error): void {
    this.#clearTimer();
    this.#destroyUpstream();
    if (this.#answered) return;
    this.#x.onError(err);
    this.#opts.stats.outcome("error");
    this.#answer(this.#x.status, this.#failureOf());
    this.#closeClientAfterResponse();
  }

  #failureOf(): LocalReplyCode | undefined {
    const code = this.#x.res.getHeader("x-weft-error");
    return typeof code === "string" ? (code as LocalReplyCode) : undefined;
  }

  #answer(status: number, failure: LocalReplyCode | undefined): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#hooks.answered(status, failure);
  }

  /** Any status but 101: an ordinary response, then the connection closes. */
  #refused(res: http.IncomingMessage): void {
    this.#clearTimer();
    const x = this.#x;
    x.closeAfterResponse();
    if (!x.onHeaders(res.statusCode ?? 502, res.rawHeaders, () => res.resume())) {
      this.#destroyUpstream();
      return;
    }
    this.#opts.stats.outcome("refused");
    this.#answer(x.status, undefined);
    res.on("data", (chunk: Buffer) => {
      if (!x.onData(chunk)) res.pause();
    });
    res.on("end", () => {
      x.onComplete(null);
      this.#destroyUpstream();
    });
    res.on("error", (err) => x.onError(err));
    res.on("aborted", () => x.onError(new Error("upstream aborted the response")));
    this.#closeClientAfterResponse();
  }

  #closeClientAfterResponse(): void {
    closeAfterResponse(this.#x.res, this.#client);
  }

  #switched(res: http.IncomingMessage, up: Socket, upHead: Buffer): void {
    this.#clearTimer();
    const x = this.#x;
    const client = this.#client;
    if (x.state === DONE || client.destroyed) {
      up.destroy();
      return;
    }
    this.#upstream = up;
    up.on("error", ignoreError);
    // Recorded as a request with status 101 (its duration: until the handshake); the tunnel's own
    // lifetime is weft_upgrade_duration_seconds.
    x.abandon(101);
    x.res.detachSocket(client);
    this.#opts.stats.outcome("101");
    this.#answer(101, undefined);
    client.write(switchingProtocolsHead(res.statusMessage ?? "", res.rawHeaders, x.responseHeaders));
    this.#pipe(client, up, upHead);
  }

  #pipe(client: Socket, up: Socket, upHead: Buffer): void {
    const stats = this.#opts.stats;
    const opened = performance.now();
    stats.active.inc();
    this.#opts.tunnels.add(client);
    client.allowHalfOpen = true;
    up.allowHalfOpen = true;
    if (upHead.length > 0) {
      stats.sent.inc(upHead.length);
      client.write(upHead);
    }
    if (this.#clientHead.length > 0) {
      stats.received.inc(this.#clientHead.length);
      up.write(this.#clientHead);
    }
    client.on("data", (c: Buffer) => stats.received.inc(c.length));
    up.on("data", (c: Buffer) => stats.sent.inc(c.length));
    const idle = () => {
      client.destroy();
      up.destroy();
    };
    client.setTimeout(this.#opts.idleMs, idle);
    up.setTimeout(this.#opts.idleMs, idle);
    client.pipe(up);
    up.pipe(client);
    const closeBoth = () => {
      client.destroy();
      up.destroy();
    };
    client.once("close", closeBoth);
    up.once("close", closeBoth);
    client.once("error", closeBoth);
    up.once("error", closeBoth);
    let counted = false;
    const done = () => {
      if (counted) return;
      counted = true;
      stats.active.dec();
      stats.duration.observe((performance.now() - opened) / 1000);
      this.#opts.tunnels.delete(client);
    };
    client.once("close", done);
    client.resume();
  }

  #destroyUpstream(): void {
    this.#clearTimer();
    this.#request?.destroy();
    this.#upstream?.destroy();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#hooks.closed();
  }
}

function hasHeader(list: string[], lower: string): boolean {
  for (let i = 0; i < list.length; i += 2) if (list[i].toLowerCase() === lower) return true;
  return false;
}

/**
 * The client's response for an upgrade request: Node gives the 'upgrade' event a bare socket, and a
 * ServerResponse on it lets the exchange's local replies and forwarded refusals work as for any request.
 */
export function clientResponse(req: http.IncomingMessage, socket: Socket): http.ServerResponse {
  const res = new http.ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  return res;
}

/** After a response that is not a 101: close the client connection once it is written. */
export function closeAfterResponse(res: http.ServerResponse, client: Socket): void {
  const end = () => {
    if (!client.destroyed) client.end();
    // Read and discard what the client still sends, briefly, so that it reads the answer before
    // the close (closing with unread bytes would reset the connection and lose the answer).
    const t = setTimeout(() => client.destroy(), LINGER_MS);
    t.unref();
    client.once("close", () => clearTimeout(t));
    client.resume();
  };
  if (res.writableFinished) end();
  else {
    res.once("finish", end);
    res.once("close", () => {
      if (!res.writableFinished) client.destroy();
    });
  }
}

const LINGER_MS = 2_000;
