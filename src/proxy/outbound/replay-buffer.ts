// The replay buffer: a stage of a route's chain when the request may be sent more than once
// (retries, hedging) or copied (mirrors). It builds the upstream head from the request as the
// filters before it left it, and reads the body into memory when it fits the rule's
// maxBufferedBodyBytes; a larger body is handed on as a stream that replays what was read and then
// continues with the rest (that request is then neither retried nor mirrored with its body).

import { Readable } from "node:stream";
import type { Filter, Next } from "../filters/filter.ts";
import { hasHeader } from "../http/header-list.ts";
import { OPEN, type Exchange } from "../pipeline/exchange.ts";
import type { RouteContext } from "./route-context.ts";

export class ReplayBuffer implements Filter<RouteContext> {
  readonly name = "replay-buffer";
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }

  onRequest(c: RouteContext, next: Next<RouteContext>): void {
    const x = c.x;
    const headers = c.upstreamHeaders();
    if (!x.hasBody) return next.run(c);
    bufferBody(x, this.#limit, (body) => {
      if (x.state !== OPEN) return;
      if (Buffer.isBuffer(body) && !hasHeader(headers, "content-length"))
        headers.push("content-length", String(body.length));
      c.body = body;
      next.run(c);
    });
  }
}

function bufferBody(x: Exchange, limit: number, done: (body: Buffer | Readable) => void): void {
  const req = x.body as Readable;
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    chunks.push(chunk);
    if (size > limit) {
      cleanup();
      req.pause();
      const rest = Readable.from(
        (async function* () {
          for (const ch of chunks) yield ch;
          for await (const ch of req) yield ch as Buffer;
        })(),
        { objectMode: false },
      );
      done(rest);
    }
  };
  const onEnd = () => {
    cleanup();
    done(Buffer.concat(chunks, size));
  };
  const onError = () => cleanup();
  const cleanup = () => {
    req.removeListener("data", onData);
    req.removeListener("end", onEnd);
    req.removeListener("error", onError);
  };
  x.watchClient();
  req.on("data", onData);
  req.on("end", onEnd);
  req.on("error", onError);
}
