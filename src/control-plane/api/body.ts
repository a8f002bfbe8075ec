// Reading request bodies without letting a caller decide how much memory and time that takes. The
// server authenticates from headers before it gets here, so only a caller with a credential is ever
// read from. Then, per request:
//   - a cap chosen by the route (a CSR is a few KB, an apply a few MB): a Content-Length over it is
//     refused before a byte is read, a chunked body when it crosses it (413);
//   - a deadline for the whole body (408): a body that trickles or never finishes is cut;
//   - for JSON, a nesting limit checked on the bytes as they arrive (400), before JSON.parse runs;
//   - a limit on bodies being read at once, server-wide (503 with Retry-After): the memory held by
//     reads in progress is at most that many caps. The Retry-After is a turn booked in the server's
//     come-back schedule (come-back.ts, through `retryAfterMs`), so a caller refused here is counted
//     with the crowd and told a time of its own, not "1 s" with everyone else.
// A request refused here is answered with `Connection: close`, so the rest of its body is never read.

import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError } from "./http.ts";

export interface BodyLimits {
  /** Largest body accepted, bytes. */
  maxBytes: number;
  /** For JSON bodies: deepest nesting of arrays and objects accepted. */
  maxJsonDepth?: number;
}

export interface BodyReaderOptions {
  /** Time allowed for a whole body, from when reading starts (ms). */
  deadlineMs: number;
  /** Bodies read at the same time, server-wide. */
  maxConcurrent: number;
  /** When a caller refused for being one body too many should come back (ms); books its turn. */
  retryAfterMs?: () => number;
}

export const DEFAULT_BODY_DEADLINE_MS = 10_000;
export const DEFAULT_MAX_CONCURRENT_BODIES = 32;

export class BodyReader {
  readonly #opts: BodyReaderOptions;
  #reading = 0;

  constructor(opts: BodyReaderOptions) {
    this.#opts = opts;
  }

  get reading(): number {
    return this.#reading;
  }

  async read(req: IncomingMessage, res: ServerResponse, limits: BodyLimits): Promise<string> {
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > limits.maxBytes)
      throw tooLarge(limits.maxBytes, `Content-Length is ${declared}`);
    if (this.#reading >= this.#opts.maxConcurrent)
      throw new ApiError(503, "busy", "too many request bodies being received; try again shortly", {
        retryAfterSeconds: Math.max(1, Math.ceil((this.#opts.retryAfterMs?.() ?? 1000) / 1000)),
      });
    this.#reading++;
    try {
      // Only now is the client told to send its body (it asked with `Expect: 100-continue`).
      if (/^100-continue$/i.test(req.headers.expect ?? "")) res.writeContinue();
      return await this.#collect(req, limits);
    } finally {
      this.#reading--;
    }
  }

  #collect(req: IncomingMessage, limits: BodyLimits): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const depth = limits.maxJsonDepth === undefined ? undefined : new JsonDepthGauge(limits.maxJsonDepth);
      let size = 0;
      const finish = (err?: Error) => {
        clearTimeout(timer);
        req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
        if (err) {
          req.pause();
          reject(err);
        } else resolve(Buffer.concat(chunks).toString("utf8"));
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > limits.maxBytes) return finish(tooLarge(limits.maxBytes, "the body is larger"));
        const at = depth?.push(chunk);
        if (at !== undefined)
          return finish(
            new ApiError(
              400,
              "bad_json",
              `request body nests arrays/objects deeper than ${limits.maxJsonDepth} levels (at byte ${size - chunk.length + at})`,
            ),
          );
        chunks.push(chunk);
      };
      const onEnd = () => finish();
      const onError = () => finish(aborted());
      const onClose = () => finish(aborted());
      const timer = setTimeout(
        () =>
          finish(
            new ApiError(
              408,
              "body_timeout",
              `request body not received within ${this.#opts.deadlineMs} ms (got ${size} bytes)`,
            ),
          ),
        this.#opts.deadlineMs,
      );
      req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
    });
  }
}

/** The client went away mid-body: nothing to answer, nothing to log. */
function aborted(): ApiError {
  return new ApiError(400, "client_aborted", "the client closed the connection before the body ended");
}

function tooLarge(max: number, what: string): ApiError {
  return new ApiError(413, "body_too_large", `request body over this API's limit of ${max} bytes (${what})`, {
    limitBytes: max,
  });
}

const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Tracks the nesting depth of JSON text fed in pieces, without parsing it: brackets and braces
 * outside strings. All the bytes it looks at are ASCII, which never occur inside a UTF-8 multi-byte
 * character, so chunks may split anywhere. Malformed JSON is left for JSON.parse to report.
 */
export class JsonDepthGauge {
  readonly #max: number;
  #depth = 0;
  #inString = false;
  #escaped = false;

  constructor(max: number) {
    this.#max = max;
  }

  /** Feeds bytes; returns the offset in `chunk` where the nesting went past the limit, if it did. */
  push(chunk: Uint8Array): number | undefined {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (b === BACKSLASH) this.#escaped = true;
        else if (b === QUOTE) this.#inString = false;
      } else if (b === QUOTE) this.#inString = true;
      else if (b === OPEN_BRACKET || b === OPEN_BRACE) {
        if (++this.#depth > this.#max) return i;
      } else if (b === CLOSE_BRACKET || b === CLOSE_BRACE) this.#depth--;
    }
    return undefined;
  }
}
