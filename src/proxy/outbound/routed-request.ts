// The end of a route's filter chain (route-chain.ts) for routes with features: the attempts. The
// first goes out at once. A failure the retry policy covers (a status, a connect failure, a reset, a
// per-try timeout) schedules another after an exponential backoff with jitter, on another endpoint
// when there is one — if attempts remain, the method is safe to repeat (or the rule allows it), the
// body is still replayable (replay-source.ts: each attempt reads it from the start and then follows
// it live; a body that outgrew the rule's buffer stops retries), and the destination's retry budget and
// max-retries limit allow it. An attempt that never left the proxy (connect refused, TLS handshake
// failed: WeftError.requestSent = false) goes to another endpoint at once instead, with or without a
// retry policy, outside the budget, at most MAX_RESENDS times (attempt.ts). A hedge is a further
// attempt sent when none answered within the hedge delay; the first acceptable response wins and the
// others are cancelled. Nothing is written to the client until one attempt wins, so a retried or
// hedged failure is never seen by it. The attempt engine (engine.ts) runs this for routes with a
// policy; the bookkeeping of each attempt (claim, end, resend) is attempt.ts', shared with the plain
// path, upgrades and mirrors.

import type { Readable } from "node:stream";
import type { UpstreamHandler, UpstreamRequest } from "../transport/upstream.ts";
import { DST_PORT_HEADER } from "../http/dst-port.ts";
import { DEADLINE_HEADER, DEFAULT_TIMEOUT_LIMIT } from "../pipeline/timeouts.ts";
import { DONE, OPEN, type Exchange } from "../pipeline/exchange.ts";
import type { Outcome } from "../balancer/endpoint-set.ts";
import type { CompiledCluster, RouteCounters } from "./compile.ts";
import { failureOfError, outcomeOfFailure, outcomeOfStatus } from "./outcomes.ts";
import { claim, end, Refusal, resend, type Endpoint } from "./attempt.ts";
import { backoffMs, methodRetriable, retryReason } from "./retry.ts";
import type { RouteContext } from "./route-context.ts";
import { setGrpcTimeout } from "../grpc/deadline.ts";
import { grpcRetryReason } from "../grpc/retry.ts";
import type { HeaderBlock } from "../grpc/status.ts";

/** Sends the attempts of a request on a route with a policy (the engine's policy case). */
export function startRouted(c: RouteContext): void {
  new RoutedRequest(c, c.upstreamHeaders(), c.counters).start();
}

// --- attempts ---

class Attempt implements UpstreamHandler {
  readonly rr: RoutedRequest;
  readonly ep: Endpoint;
  readonly isRetry: boolean;
  readonly isHedge: boolean;
  /** What this attempt sends: a replay reader of its own, or the client's body when not replayable. */
  body: Readable | null = null;
  /** Holds one of the destination's max-retries slots until it finishes. */
  holdsRetrySlot = false;
  readonly startedAt = performance.now();
  abortFn: ((err?: Error) => void) | undefined = undefined;
  /** Cancelled by us (lost a hedge race, or its response is being retried): its errors are ignored. */
  discarded = false;
  finished = false;
  outcome: Outcome = "success";

  constructor(rr: RoutedRequest, ep: Endpoint, isRetry: boolean, isHedge: boolean) {
    this.rr = rr;
    this.ep = ep;
    this.isRetry = isRetry;
    this.isHedge = isHedge;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    if (this.discarded) abort(new Error("attempt cancelled"));
  }
  onHeaders(
    status: number,
    raw: (Buffer | string)[],
    resume: () => void,
    _text?: string,
    endStream = false,
  ): boolean {
    return this.rr.headers(this, status, raw, resume, endStream);
  }
  onData(chunk: Buffer): boolean {
    return this.rr.winner === this ? this.rr.x.onData(chunk) : false;
  }
  onComplete(trailers: (Buffer | string)[] | null): void {
    if (this.rr.winner !== this) return;
    this.finish(this.outcome);
    this.rr.x.onComplete(trailers);
    this.rr.settle();
  }
  onError(err: Error): void {
    this.rr.failed(this, err);
  }

  /** Cancels this attempt; what it reports afterwards is ignored. */
  discard(outcome: Outcome): void {
    this.finish(outcome);
    this.discarded = true;
    this.abortFn?.(new Error("attempt cancelled"));
  }

  finish(outcome: Outcome): void {
    if (this.finished) return;
    this.handOver();
    end(this.ep, outcome, this.startedAt, this.rr.x);
  }

  /** Finished without ending on its endpoint: attempt.ts' resend ended it and began the next. */
  handOver(): void {
    this.finished = true;
    // A replay reader of its own stops holding the live body back (replay-source.ts).
    if (this.body !== null && this.rr.replayed) this.body.destroy();
    if (this.holdsRetrySlot) this.rr.cluster.limits.activeRetries--;
  }
}

class RoutedRequest {
  readonly x: Exchange;
  readonly cluster: CompiledCluster;
  readonly winner: Attempt | undefined = undefined;
  readonly #c: RouteContext;
  readonly #counters: RouteCounters;
  readonly #headers: string[];
  /** The body is read through a ReplaySource (the chain has a replay buffer and there is a body). */
  readonly replayed: boolean;
  readonly #attempts: Attempt[] = [];
  #retries = 0;
  #hedges = 0;
  /** Attempts sent again because the previous one never left the proxy. */
  #resends = 0;
  /** Max-retries slots taken for retries that are scheduled (in backoff) but not yet sent. */
  #reserved = 0;
  #settled = false;
  #requestTimer: unknown;
  #hedgeTimer: unknown;
  #backoffTimer: unknown;
  #lastEndpoint: Endpoint | undefined;

  constructor(c: RouteContext, headers: string[], counters: RouteCounters) {
    this.#c = c;
    this.x = c.x;
    this.cluster = c.backend.cluster;
    this.#counters = counters;
    this.#headers = headers;
    this.replayed = c.replay !== undefined;
  }

  start(): void {
    const x = this.x;
    x.watchClient();
    // Until an attempt wins, the client going away cancels everything under way.
    x.onConnect(() => this.#cancel());
    this.cluster.limits.budget.recordRequest();
    const replay = this.#c.replay;
    if (replay !== undefined) replay.onOverflow = () => this.#overflowed();
    const ms = this.#c.features.timeouts?.requestMs;
    if (ms !== undefined && ms > 0)
      this.#requestTimer = this.#c.clock.setTimeout(() => this.#timedOut(ms), ms);
    this.#launch(false, false);
  }

  /**
   * Sends an attempt: on `begun` (an endpoint attempt.ts' resend already began it on), or where
   * attempt.ts' claim admits and picks one.
   */
  #launch(isRetry: boolean, isHedge: boolean, begun?: Endpoint): void {
    const x = this.x;
    const lim = this.cluster.limits;
    const holdsSlot = (isRetry || isHedge) && this.#reserved > 0;
    if (holdsSlot) this.#reserved--;
    const release = () => {
      if (holdsSlot) lim.activeRetries--;
    };
    let body = this.#c.body;
    const replay = this.#c.replay;
    if (replay !== undefined) body = replay.reader() ?? null;
    if (x.state !== OPEN || this.#settled || (replay !== undefined && body === null)) {
      release();
      // The body outgrew the buffer or failed since this attempt was decided on.
      if (x.state === OPEN && !this.#settled && this.#attempts.length === 0)
        this.#fail("upstream_unavailable", this.#notReplayable());
      if (begun !== undefined) end(begun, "local", performance.now(), x);
      body?.destroy();
      return;
    }
    const avoid = isRetry || isHedge ? this.#lastEndpoint : undefined;
    const ep = begun ?? claim(x, this.cluster, this.#c.hashKey, avoid);
    if (ep instanceof Refusal) {
      release();
      body?.destroy();
      if (this.#attempts.length === 0) this.#fail(ep.code, ep.detail);
      return;
    }
    const a = new Attempt(this, ep, isRetry || isHedge, isHedge);
    a.body = body;
    a.holdsRetrySlot = holdsSlot;
    this.#attempts.push(a);
    this.#lastEndpoint = ep;
    x.upstream = ep.value.label;
    const f = this.#c.features;
    const t = f.timeouts;
    const perTry = t?.backendRequestMs ?? this.#c.timeouts.responseHeadersMs;
    x.timeoutLimit =
      t?.backendRequestMs !== undefined
        ? f.timeoutLimits.backendRequest
        : perTry > 0
          ? DEFAULT_TIMEOUT_LIMIT
          : undefined;
    const request: UpstreamRequest = {
      method: x.method,
      path: x.target,
      headers: this.#headersFor(ep, t?.backendRequestMs ?? 0),
      body,
      headersTimeout: perTry,
      bodyTimeout: this.#c.timeouts.bodyIdleMs,
    };
    ep.value.pool.dispatcher.dispatch(request, a);
    const hedge = f.hedge;
    if (hedge !== undefined && this.#hedges < hedge.maxHedges && this.#replayable()) {
      this.#c.clock.clearTimeout(this.#hedgeTimer);
      this.#hedgeTimer = this.#c.clock.setTimeout(() => this.#hedge(), hedge.delayMs);
    }
  }

  /**
   * The attempt's headers: with a route timeout, a mesh endpoint (its sidecar) is told the time left
   * for response headers — the per-try timeout or what remains of the request timeout, whichever is
   * shorter — so that its own wait for the app follows this route, not a default of its own. Only
   * the route's timeouts travel (not this proxy's --response-headers-timeout).
   */
  #headersFor(ep: Endpoint, backendRequestMs: number): string[] {
    const requestMs = this.#c.features.timeouts?.requestMs ?? 0;
    const now = performance.now();
    let left = backendRequestMs > 0 ? backendRequestMs : Infinity;
    if (requestMs > 0) left = Math.min(left, requestMs - (now - this.x.startedAt));
    // A gRPC caller's deadline: the attempt's grpc-timeout is the shorter of what is left of it and the route's.
    const deadlineAt = this.x.deadlineAt;
    const grpcLeft = deadlineAt > 0 ? Math.min(left, deadlineAt - now) : Infinity;
    const dstPort = this.x.dstPort;
    const mesh = ep.value.pool.endpoint.identity !== undefined;
    if (grpcLeft === Infinity && ((left === Infinity && dstPort === undefined) || !mesh))
      return this.#headers;
    // A copy per attempt: a hedge or retry must not change the value an earlier attempt sends.
    const h = this.#headers.slice();
    if (grpcLeft !== Infinity) setGrpcTimeout(h, grpcLeft);
    if (!mesh) return h;
    if (left !== Infinity) h.push(DEADLINE_HEADER, String(Math.max(1, Math.ceil(left))));
    // The service port, for a multi-port service's sidecar (../http/dst-port.ts).
    if (dstPort !== undefined) h.push(DST_PORT_HEADER, dstPort);
    return h;
  }

  #hedge(): void {
    if (this.winner !== undefined || this.#settled || this.x.state !== OPEN) return;
    if (!this.#replayable() || !this.#spendRetry()) return;
    this.#hedges++;
    this.#counters.hedge("sent").inc();
    this.#launch(true, true);
  }

  /** Response headers of an attempt: the winner's go to the client; a retriable one is retried. */
  headers(
    a: Attempt,
    status: number,
    raw: (Buffer | string)[],
    resume: () => void,
    endStream: boolean,
  ): boolean {
    if (this.winner !== undefined || this.#settled || a.discarded) {
      if (!a.discarded) a.discard("local");
      return false;
    }
    const retry = this.#c.features.retry;
    let reason: string | undefined =
      retry === undefined ? undefined : retryReason(retry, { kind: "status", status });
    // A GRPCRoute's gRPC conditions, on a head that settles the call (trailers-only, or non-200).
    if (reason === undefined && retry?.grpcOn !== undefined && this.x.grpc)
      reason = grpcRetryReason(retry.grpcOn, { status, headers: grpcStatusHead(raw), endStream });
    if (reason !== undefined) {
      const others = this.#attempts.length > 1;
      if (others || this.#canRetry()) {
        this.#remove(a);
        a.discard(outcomeOfStatus(status));
        if (!others) this.#scheduleRetry(reason);
        return false;
      }
    }
    // This attempt wins.
    (this as { winner: Attempt | undefined }).winner = a;
    this.#clearTimers(false); // the request timeout keeps running until the response is complete
    for (const other of this.#attempts) if (other !== a) other.discard("local");
    this.#attempts.length = 0;
    if (a.isHedge) this.#counters.hedge("won").inc();
    a.outcome = outcomeOfStatus(status);
    const x = this.x;
    x.upstream = a.ep.value.label;
    if (a.abortFn !== undefined) x.onConnect(a.abortFn);
    return x.onHeaders(status, raw, resume, "", endStream);
  }

  failed(a: Attempt, err: Error): void {
    if (a.discarded) return;
    const x = this.x;
    if (a === this.winner) {
      // A client that went away is not the endpoint's failure.
      a.finish(x.state === DONE ? "local" : "reset");
      x.onError(err);
      this.settle();
      return;
    }
    this.#remove(a);
    const failure = failureOfError(err);
    // A resend needs the body from its start: the client's own (nothing of it was read) or a new
    // replay reader.
    const replay = this.#c.replay;
    const bodyAgain = replay === undefined || replay.replayable;
    if (this.#attempts.length === 0 && !this.#settled && x.state === OPEN && bodyAgain) {
      const c = this.#c;
      const elsewhere = resend(x, a.ep, err, this.#resends, c.hashKey, a.startedAt, this.#counters);
      if (elsewhere !== undefined) {
        a.handOver();
        this.#resends++;
        return this.#launch(false, false, elsewhere);
      }
    }
    a.finish(outcomeOfFailure(failure));
    if (this.#attempts.length > 0 || this.#settled || x.state !== OPEN) return;
    const retry = this.#c.features.retry;
    const reason = retry === undefined || failure === undefined ? undefined : retryReason(retry, failure);
    if (reason !== undefined && this.#canRetry()) return this.#scheduleRetry(reason);
    if ((err as { code?: string }).code === "WEFT_ERR_CIRCUIT_OPEN")
      this.cluster.limits.overflowPending?.inc();
    this.#clearTimers();
    this.#settled = true;
    x.upstream = a.ep.value.label;
    x.onError(err);
  }

  /** Another attempt can send the body: there is none, or it is still kept whole (replay-source.ts). */
  #replayable(): boolean {
    const replay = this.#c.replay;
    return replay === undefined ? this.#c.body === null : replay.replayable;
  }

  /**
   * The body outgrew the replay buffer. A retry waiting in backoff can no longer be sent, and there
   * is no response to give the client: it is told so (as Envoy does); attempts under way go on.
   */
  #overflowed(): void {
    if (this.#settled || this.#attempts.length > 0 || this.#backoffTimer === undefined) return;
    this.#fail("upstream_unavailable", this.#notReplayable());
  }

  #notReplayable(): string {
    const replay = this.#c.replay;
    const why =
      replay !== undefined && replay.size > replay.limit
        ? `the request body outgrew the retry buffer (maxBufferedBodyBytes ${replay.limit})`
        : "the request body failed";
    return `${this.x.upstream}: the last attempt failed and cannot be retried: ${why}`;
  }

  #canRetry(): boolean {
    const retry = this.#c.features.retry;
    if (retry === undefined || this.#retries >= retry.attempts) return false;
    if (!this.#replayable() || !methodRetriable(retry, this.x.method)) return false;
    return this.#spendRetry();
  }

  /** Takes a retry (or hedge) from the destination's budget and max-retries limit. */
  #spendRetry(): boolean {
    const lim = this.cluster.limits;
    if (lim.maxRetries > 0 && lim.activeRetries >= lim.maxRetries) {
      lim.overflowRetries?.inc();
      this.#counters.budgetExhausted().inc();
      return false;
    }
    if (!lim.budget.tryRetry()) {
      this.#counters.budgetExhausted().inc();
      return false;
    }
    // The slot is held from now, backoff included, until the attempt it pays for finishes.
    lim.activeRetries++;
    this.#reserved++;
    return true;
  }

  /** Gives back the slots of retries that were scheduled and will now never be sent. */
  #releaseReserved(): void {
    this.cluster.limits.activeRetries -= this.#reserved;
    this.#reserved = 0;
  }

  #scheduleRetry(reason: string): void {
    const retry = this.#c.features.retry!;
    this.#retries++;
    this.#counters.retry(reason).inc();
    const clock = this.#c.clock;
    const ms = backoffMs(retry, this.#retries, () => clock.random());
    this.#backoffTimer = this.#c.clock.setTimeout(() => {
      this.#backoffTimer = undefined;
      this.#launch(true, false);
    }, ms);
  }

  #remove(a: Attempt): void {
    const i = this.#attempts.indexOf(a);
    if (i !== -1) this.#attempts.splice(i, 1);
  }

  #timedOut(ms: number): void {
    this.#requestTimer = undefined;
    if (this.#settled) return;
    const w = this.winner;
    if (w !== undefined) {
      // The response has started: cut it off so the client sees a failure, not a short body.
      w.abortFn?.(new Error(`route ${this.#c.route.name}: request timeout (${ms} ms)`));
      return;
    }
    const limit = this.#c.features.timeoutLimits.request;
    this.#fail("timeout", `${this.x.upstream} sent no response headers within ${ms} ms (${limit})`);
  }

  #fail(code: "timeout" | "circuit_open" | "upstream_unavailable", detail: string): void {
    this.#clearTimers();
    this.#settled = true;
    for (const a of this.#attempts) a.discard("local");
    this.#attempts.length = 0;
    this.x.reply(code, detail);
  }

  #cancel(): void {
    this.#clearTimers();
    this.#settled = true;
    for (const a of this.#attempts) a.discard("local");
    this.#attempts.length = 0;
  }

  settle(): void {
    this.#settled = true;
    this.#clearTimers();
  }

  #clearTimers(all = true): void {
    const clock = this.#c.clock;
    clock.clearTimeout(this.#hedgeTimer);
    clock.clearTimeout(this.#backoffTimer);
    this.#hedgeTimer = this.#backoffTimer = undefined;
    this.#releaseReserved(); // a cancelled backoff never sends its retry
    if (all) {
      clock.clearTimeout(this.#requestTimer);
      this.#requestTimer = undefined;
    }
  }
}

/** The grpc-status of a raw response head (name, value, ...) as a header block, for grpcRetryReason. */
function grpcStatusHead(raw: readonly (Buffer | string)[]): HeaderBlock {
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i]);
    if (name.length === 11 && name.toLowerCase() === "grpc-status")
      return { "grpc-status": String(raw[i + 1]) };
  }
  return {};
}
