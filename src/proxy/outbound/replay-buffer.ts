// The replay buffer: a stage of a route's chain when the request may be sent more than once
// (retries, hedging) or copied (mirrors). It builds the upstream head from the request as the
// filters before it left it, and puts a ReplaySource (replay-source.ts) on the body: the first
// attempt gets the body as it arrives — a streaming body (gRPC client or bidi streaming) is never
// held back — while a copy is kept up to the rule's maxBufferedBodyBytes for a retry, a hedge or a
// mirror to replay. A body that outgrows the limit is sent whole by the attempts already under way,
// and the request is then neither retried nor hedged (mirrors still reading it are cut off).

import type { Filter, Next } from "../filters/filter.ts";
import type { Readable } from "node:stream";
import { ReplaySource } from "./replay-source.ts";
import type { RouteContext } from "./route-context.ts";

export class ReplayBuffer implements Filter<RouteContext> {
  readonly name = "replay-buffer";
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }

  onRequest(c: RouteContext, next: Next<RouteContext>): void {
    const x = c.x;
    c.upstreamHeaders();
    if (x.hasBody) {
      // The client going away must be seen while the body is being read for the copy.
      x.watchClient();
      c.replay = new ReplaySource(x.body as Readable, this.#limit);
    }
    next.run(c);
  }
}
