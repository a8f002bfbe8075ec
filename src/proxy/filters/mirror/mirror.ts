// Request mirroring (HTTPRoute RequestMirror): a copy of the request goes to the mirror backend and
// is forgotten — its response is read and dropped, its failures only counted, and nothing about it
// delays or changes the real request. It runs after the replay buffer (../../outbound/replay-buffer.ts),
// so it sends the upstream head the filters before it produced, and reads the body through a replay
// reader of its own that never holds the real request back: a body that outgrows the buffer cuts
// the mirrored request off (counted as skipped_body_too_large). A mirror is a shadow attempt
// (../../outbound/attempt.ts' claim and end): balanced and observed like the others, holding no
// request slot. Mirrors exist on the outbound side only.

import type { Readable } from "node:stream";
import type { Outcome } from "../../balancer/endpoint-set.ts";
import { claim, end, Refusal, type Endpoint } from "../../outbound/attempt.ts";
import type { UpstreamHandler } from "../../transport/upstream.ts";
import type { CompiledMirror } from "../../outbound/compile.ts";
import type { RouteContext } from "../../outbound/route-context.ts";
import type { Filter, Next } from "../filter.ts";
import { failureOfError, outcomeOfFailure, outcomeOfStatus } from "../../outbound/outcomes.ts";
import { isReplayOverflow } from "../../outbound/replay-source.ts";

class MirrorHandler implements UpstreamHandler {
  readonly #m: CompiledMirror;
  readonly #ep: Endpoint;
  readonly #body: Readable | null;
  readonly #startedAt = performance.now();
  #counted = false;
  constructor(m: CompiledMirror, ep: Endpoint, body: Readable | null) {
    this.#m = m;
    this.#ep = ep;
    this.#body = body;
  }
  onConnect(): void {}
  onHeaders(status: number): boolean {
    this.#count(`${Math.floor(status / 100)}xx`, outcomeOfStatus(status));
    return true;
  }
  onData(): boolean {
    return true;
  }
  onComplete(): void {}
  onError(err: Error): void {
    if (isReplayOverflow(err)) this.#count("skipped_body_too_large", "local");
    else this.#count("error", outcomeOfFailure(failureOfError(err)));
  }
  #count(outcome: string, o: Outcome): void {
    if (this.#counted) return;
    this.#counted = true;
    this.#body?.destroy();
    this.#m.counters.mirrored(outcome).inc();
    end(this.#ep, o, this.#startedAt, undefined);
  }
}

export function sendMirror(
  m: CompiledMirror,
  method: string,
  path: string,
  headers: string[],
  body: Readable | null,
): void {
  const ep = claim(undefined, m.cluster, undefined);
  if (ep instanceof Refusal) {
    body?.destroy();
    m.counters.mirrored("no_endpoint").inc();
    return;
  }
  const h = headers.slice();
  // Istio/Envoy convention: the mirrored request's authority carries a "-shadow" suffix, so the
  // receiving service (and its logs) can tell a copy from real traffic.
  h[1] = shadowHost(h[1]);
  ep.value.pool.dispatcher.dispatch(
    {
      method,
      path,
      headers: h,
      body,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    },
    new MirrorHandler(m, ep, body),
  );
}

function shadowHost(host: string): string {
  const colon = host.lastIndexOf(":");
  if (colon > 0 && !host.endsWith("]") && /^\d+$/.test(host.slice(colon + 1)))
    return `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
  return `${host}-shadow`;
}

/** Sends each of a route's mirrors its share of requests, then lets the request go on. */
export class MirrorFilter implements Filter<RouteContext> {
  readonly name = "mirror";
  readonly #mirrors: readonly CompiledMirror[];
  constructor(mirrors: readonly CompiledMirror[]) {
    this.#mirrors = mirrors;
  }
  onRequest(c: RouteContext, next: Next<RouteContext>): void {
    const headers = c.upstreamHeaders();
    const replay = c.replay;
    for (const m of this.#mirrors) {
      if (m.fraction < 1 && c.clock.random() >= m.fraction) continue;
      const body = replay === undefined ? null : (replay.reader(true) ?? null);
      if (replay !== undefined && body === null) {
        m.counters.mirrored("skipped_body_too_large").inc();
        continue;
      }
      sendMirror(m, c.x.method, c.x.target, headers, body);
    }
    next.run(c);
  }
}
