// HTTPRoute fault injection (weft's FaultInjection ExtensionRef): a share of requests is delayed,
// and a share is answered with a configured status (`fault_injected`) instead of being forwarded.
// Delay first, then abort, as Envoy's fault filter does. Each fault is counted in
// weft_faults_injected_total for the route and the picked destination. The delay holds no socket
// of the upstream's and is cancelled by the client going away.

import type { FaultPolicy } from "../../../model/snapshot.ts";
import { OPEN } from "../../pipeline/exchange.ts";
import type { RouteContext } from "../../outbound/route-context.ts";
import type { Filter, Next } from "../filter.ts";

export class FaultFilter implements Filter<RouteContext> {
  readonly name = "fault";
  readonly #fault: FaultPolicy;
  constructor(fault: FaultPolicy) {
    this.#fault = fault;
  }

  onRequest(c: RouteContext, next: Next<RouteContext>): void {
    const delay = this.#fault.delay;
    if (delay !== undefined && c.clock.random() * 100 < delay.percent) {
      c.counters.fault("delay").inc();
      c.x.watchClient();
      c.clock.setTimeout(() => {
        if (c.x.state === OPEN) this.#abortOrNext(c, next);
      }, delay.ms);
      return;
    }
    this.#abortOrNext(c, next);
  }

  #abortOrNext(c: RouteContext, next: Next<RouteContext>): void {
    const abort = this.#fault.abort;
    if (abort !== undefined && c.clock.random() * 100 < abort.percent) {
      c.counters.fault("abort").inc();
      return c.x.reply(
        "fault_injected",
        `fault injected by route ${c.route.name}`,
        false,
        abort.status,
        undefined,
        abort.grpcStatus,
      );
    }
    next.run(c);
  }
}
