// Connect backoff: an endpoint whose connections fail is avoided at once, whatever the policy, so
// that LeastRequest (which favours whoever finishes fastest) does not send it a third of the traffic.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CONNECT_BACKOFF_BASE_MS, CONNECT_BACKOFF_MAX_MS, EndpointSet } from "./endpoint-set.ts";
import { endpoints, lb, manualClock, seeded } from "../testing/endpoint-sets.ts";

/**
 * `n` requests, one every `stepMs`; e1 refuses connections: its attempt fails at once and the request
 * goes to another endpoint (as the outbound listener does). Returns the picks e1 got after its first.
 */
function refusingEndpointPicks(set: EndpointSet<string>, clock: { t: number }, n: number, stepMs: number) {
  let refusedPicks = 0;
  let failedRequests = 0;
  for (let i = 0; i < n; i++) {
    clock.t += stepMs;
    let h = set.pick()!;
    set.start(h);
    if (h.value === "e1") {
      refusedPicks++;
      set.end(h, "connect", 0.1);
      const again = set.pick(undefined, h)!;
      set.start(again);
      h = again;
      if (h.value === "e1") {
        failedRequests++;
        set.end(h, "connect", 0.1);
        continue;
      }
    }
    set.end(h, "success", 5);
  }
  return { refusedPicks, failedRequests };
}

test("LeastRequest, 3 endpoints, one refusing: after its first failure it gets almost no picks, and no request fails", () => {
  const clock = manualClock();
  const set = new EndpointSet(endpoints(3), lb("LeastRequest"), { now: clock.now, random: seeded(7) });
  // 1000 requests over 10 s: without connect backoff e1 would get about a third of them.
  const { refusedPicks, failedRequests } = refusingEndpointPicks(set, clock, 1000, 10);
  assert.equal(failedRequests, 0);
  // Probes only when a backoff ends: 250 ms, then 0.5, 1, 2, 4, 8 s (capped): at most ~7 in 10 s.
  assert.ok(refusedPicks <= 7, `refusing endpoint picked ${refusedPicks} times`);
  const d = set.describe().find((e) => e.endpoint === "10.0.0.1:8080")!;
  assert.ok(d.connectFailures! >= 4);
  assert.ok(d.unreachableForMs! > 0);
});

test("the same holds for every balancer, and without any outlier-detection policy", () => {
  for (const type of ["RoundRobin", "Random", "PeakEWMA", "RingHash", "Maglev"] as const) {
    const clock = manualClock();
    const set = new EndpointSet(endpoints(3), lb(type), { now: clock.now, random: seeded(3) });
    const { refusedPicks, failedRequests } = refusingEndpointPicks(set, clock, 1000, 10);
    assert.equal(failedRequests, 0, type);
    assert.ok(refusedPicks <= 7, `${type}: refusing endpoint picked ${refusedPicks} times`);
  }
});

test("connect backoff doubles per failure in a row, is capped, and ends with the first connection that works", () => {
  const clock = manualClock();
  const set = new EndpointSet(endpoints(2), lb("RoundRobin"), { now: clock.now, random: seeded(1) });
  const e0 = () => set.describe()[0];
  // Fail e0 through handles picked while it is available.
  const handleOf = (v: string) => {
    for (let i = 0; i < 4; i++) {
      const h = set.pick()!;
      if (h.value === v) return h;
    }
    throw new Error(`${v} not picked`);
  };
  let expected = CONNECT_BACKOFF_BASE_MS;
  for (let i = 0; i < 8; i++) {
    const h = handleOf("e0");
    set.start(h);
    set.end(h, "connect", 1);
    assert.equal(e0().unreachableForMs, Math.min(expected, CONNECT_BACKOFF_MAX_MS), `failure ${i + 1}`);
    for (let k = 0; k < 5; k++) assert.equal(set.pick()!.value, "e1", "avoided while backing off");
    clock.t += Math.min(expected, CONNECT_BACKOFF_MAX_MS);
    expected *= 2;
  }
  // A failure of an attempt that started before the mark does not lengthen it.
  const h = handleOf("e0");
  set.start(h);
  set.start(h);
  set.end(h, "connect", 1);
  const first = e0().unreachableForMs;
  set.end(h, "connect", 1);
  assert.equal(e0().unreachableForMs, first);
  clock.t += CONNECT_BACKOFF_MAX_MS;
  const ok = handleOf("e0");
  set.start(ok);
  set.end(ok, "success", 1);
  assert.equal(e0().connectFailures, undefined, "reset by a connection that worked");
  assert.equal(e0().unreachableForMs, undefined);
});

test("when every endpoint is backing off, picks still return one (the verdict may be stale)", () => {
  const clock = manualClock();
  const set = new EndpointSet(endpoints(2), lb("LeastRequest"), { now: clock.now, random: seeded(2) });
  for (const v of ["e0", "e1"]) {
    for (let i = 0; i < 4; i++) {
      const h = set.pick()!;
      if (h.value !== v) continue;
      set.start(h);
      set.end(h, "connect", 1);
      break;
    }
  }
  assert.ok(set.describe().every((d) => d.unreachableForMs !== undefined));
  assert.ok(set.pick() !== undefined);
});

test("connect backoff carries over a config change (state follows the endpoint key)", () => {
  const clock = manualClock();
  const a = new EndpointSet(endpoints(3), lb("RoundRobin"), { now: clock.now, random: seeded(4) });
  for (let i = 0; i < 3; i++) {
    const h = a.pick()!;
    a.start(h);
    a.end(h, h.value === "e1" ? "connect" : "success", 1);
  }
  const b = new EndpointSet(endpoints(3), lb("RoundRobin"), { now: clock.now, random: seeded(5) });
  b.inheritFrom(a);
  for (let i = 0; i < 30; i++) assert.notEqual(b.pick()!.value, "e1");
  clock.t += CONNECT_BACKOFF_BASE_MS;
  const seen = new Set(Array.from({ length: 6 }, () => b.pick()!.value));
  assert.ok(seen.has("e1"), "probed again once the backoff is over");
});
