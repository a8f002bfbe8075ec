// Request events at the pipeline's boundaries, for observers: metrics (request-metrics.ts) is one;
// tracing, tap and access logs will be others. The list of observers is fixed per listener when it
// is built, and each hook is folded into one function — or undefined when nobody subscribed, so an
// unobserved boundary costs one comparison and nothing else (no event object, no closure).
//
//   start         the edge read a valid request and handed it to the listener (a request the edge
//                 refused as malformed ends without a start)
//   route         outbound: the route that matched (before its filters run)
//   attemptStart  outbound: an attempt goes to an endpoint (first try, resend, retry, hedge)
//   attemptEnd    outbound: that attempt ended, with the endpoint outcome balancers learn
//   end           the exchange ended: the status sent (0: none, the client went away) and the local
//                 reply code when the proxy answered itself
//
// Observers must not throw and must not keep the exchange: it is reused by nothing, but holds the
// client's request until it ends.

import type { Outcome } from "../balancer/endpoint-set.ts";
import type { LocalReplyCode } from "../errors.ts";
import type { Exchange } from "./exchange.ts";

export interface RequestObserver {
  onStart?(x: Exchange): void;
  onRoute?(x: Exchange, route: string): void;
  onAttemptStart?(x: Exchange, endpoint: string): void;
  onAttemptEnd?(x: Exchange, endpoint: string, outcome: Outcome): void;
  onEnd?(x: Exchange, status: number, failure: LocalReplyCode | undefined): void;
}

type Hook<A extends unknown[]> = ((...args: A) => void) | undefined;

function fold<A extends unknown[]>(fns: ((...args: A) => void)[]): Hook<A> {
  if (fns.length === 0) return undefined;
  if (fns.length === 1) return fns[0];
  return (...args: A) => {
    for (let i = 0; i < fns.length; i++) fns[i](...args);
  };
}

/** One per listener: the observers' hooks, folded. */
export class RequestEvents {
  readonly start: Hook<[Exchange]>;
  readonly route: Hook<[Exchange, string]>;
  readonly attemptStart: Hook<[Exchange, string]>;
  readonly attemptEnd: Hook<[Exchange, string, Outcome]>;
  readonly end: Hook<[Exchange, number, LocalReplyCode | undefined]>;

  constructor(observers: readonly RequestObserver[]) {
    const start: ((x: Exchange) => void)[] = [];
    const route: ((x: Exchange, r: string) => void)[] = [];
    const attemptStart: ((x: Exchange, e: string) => void)[] = [];
    const attemptEnd: ((x: Exchange, e: string, o: Outcome) => void)[] = [];
    const end: ((x: Exchange, s: number, f: LocalReplyCode | undefined) => void)[] = [];
    for (const o of observers) {
      if (o.onStart) start.push(o.onStart.bind(o));
      if (o.onRoute) route.push(o.onRoute.bind(o));
      if (o.onAttemptStart) attemptStart.push(o.onAttemptStart.bind(o));
      if (o.onAttemptEnd) attemptEnd.push(o.onAttemptEnd.bind(o));
      if (o.onEnd) end.push(o.onEnd.bind(o));
    }
    this.start = fold(start);
    this.route = fold(route);
    this.attemptStart = fold(attemptStart);
    this.attemptEnd = fold(attemptEnd);
    this.end = fold(end);
  }
}
