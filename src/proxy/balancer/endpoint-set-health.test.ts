// EndpointSet: outlier detection, slow start, and what carries over from one set to the next.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { ClusterPolicy, LoadBalancerType } from "../../model/snapshot.ts";
import { CONNECT_BACKOFF_BASE_MS, EndpointSet, type EndpointHandle } from "./endpoint-set.ts";

import {
  manualClock,
  seeded,
  endpoints,
  lb,
  outlier,
  send,
  recorder,
  counts,
  failEndpoint,
} from "../testing/endpoint-sets.ts";

// --- outlier detection ---

test("outlier: ejects after N consecutive failures; success resets the count; local outcomes are neutral", () => {
  const clock = manualClock();
  const { log, events } = recorder();
  const set = new EndpointSet(endpoints(3), outlier(), { now: clock.now, events });
  failEndpoint(set, "e0", 2);
  failEndpoint(set, "e0", 1, "local");
  assert.equal(set.ejectedCount, 0);
  // A success in between: the run starts again.
  const e0 = () => {
    while (true) {
      const h = set.pick()!;
      if (h.value === "e0") return h;
    }
  };
  const h = e0();
  set.start(h);
  set.end(h, "success", 1);
  failEndpoint(set, "e0", 2, "timeout");
  assert.equal(set.ejectedCount, 0);
  failEndpoint(set, "e0", 1, "reset");
  assert.equal(set.ejectedCount, 1);
  assert.deepEqual(log, ["eject 10.0.0.0:8080 consecutive_failures"]);
  assert.equal(counts(Array.from({ length: 100 }, () => send(set))).get("e0"), undefined);
});

test("outlier: gateway errors eject on their own threshold; a plain 5xx breaks their run", () => {
  const clock = manualClock();
  const { log, events } = recorder();
  const policy = outlier({ consecutiveFailures: 10, consecutiveGatewayErrors: 3 });
  const set = new EndpointSet(endpoints(3), policy, { now: clock.now, events });
  failEndpoint(set, "e1", 2, "gateway");
  failEndpoint(set, "e1", 1, "http5xx");
  // Connect failures also put e1 in connect backoff (250 ms, then 500 ms): wait each out.
  failEndpoint(set, "e1", 1, "connect");
  clock.t += CONNECT_BACKOFF_BASE_MS;
  failEndpoint(set, "e1", 1, "connect");
  clock.t += 2 * CONNECT_BACKOFF_BASE_MS;
  assert.equal(set.ejectedCount, 0);
  failEndpoint(set, "e1", 1, "gateway");
  assert.deepEqual(log, ["eject 10.0.0.1:8080 consecutive_gateway_errors"]);
});

test("outlier: the ejection ends lazily at a pick after baseEjectionMs; the next lasts twice as long", () => {
  const clock = manualClock();
  const { log, events } = recorder();
  const set = new EndpointSet(endpoints(2), outlier(), { now: clock.now, events });
  failEndpoint(set, "e0", 3);
  assert.equal(set.ejectedCount, 1);
  clock.t += 29_999;
  assert.equal(send(set), "e1");
  assert.equal(set.ejectedCount, 1);
  clock.t += 1;
  assert.equal(log.length, 1);
  const after = counts(Array.from({ length: 10 }, () => send(set)));
  assert.equal(after.get("e0"), 5);
  assert.deepEqual(log, ["eject 10.0.0.0:8080 consecutive_failures", "return 10.0.0.0:8080"]);
  assert.equal(set.ejectedCount, 0);

  // Ejected again soon after: 2 × 30 s.
  failEndpoint(set, "e0", 3);
  clock.t += 59_999;
  assert.equal(counts(Array.from({ length: 10 }, () => send(set))).get("e0"), undefined);
  clock.t += 1;
  assert.equal(counts(Array.from({ length: 10 }, () => send(set))).get("e0"), 5);
});

test("outlier: ejection time is capped by maxEjectionMs, and the multiplier resets after a quiet spell", () => {
  const clock = manualClock();
  const set = new EndpointSet(endpoints(2), outlier({ baseEjectionMs: 10_000, maxEjectionMs: 25_000 }), {
    now: clock.now,
  });
  const ejectedFor = (): number => {
    failEndpoint(set, "e0", 3);
    assert.equal(set.ejectedCount, 1);
    let ms = 0;
    while (set.ejectedCount > 0) {
      clock.t += 1_000;
      ms += 1_000;
      set.pick();
    }
    return ms;
  };
  assert.equal(ejectedFor(), 10_000);
  assert.equal(ejectedFor(), 20_000);
  assert.equal(ejectedFor(), 25_000);
  assert.equal(ejectedFor(), 25_000);
  // Back and healthy for maxEjectionMs: the next ejection is a first one again.
  clock.t += 25_000;
  assert.equal(ejectedFor(), 10_000);
});

test("outlier: never more than maxEjectionPercent of the endpoints ejected, but one in a small set", () => {
  const clock = manualClock();
  const { log, events } = recorder();
  const set = new EndpointSet(endpoints(10), outlier({ maxEjectionPercent: 20 }), { now: clock.now, events });
  for (const v of ["e0", "e1", "e2"]) failEndpoint(set, v, 3);
  assert.equal(set.ejectedCount, 2);
  assert.equal(log.length, 2);
  // When one returns, the next failure of the one that was refused ejects it.
  clock.t += 30_000;
  set.pick();
  assert.equal(set.ejectedCount, 0);
  failEndpoint(set, "e2", 1);
  assert.equal(set.ejectedCount, 1);

  // 10 % of 3 endpoints rounds down to none; one is still allowed, not two.
  const small = new EndpointSet(endpoints(3), outlier({ maxEjectionPercent: 10 }), { now: clock.now });
  failEndpoint(small, "e0", 3);
  failEndpoint(small, "e1", 3);
  assert.equal(small.ejectedCount, 1);
  // 0 % turns ejection off.
  const none = new EndpointSet(endpoints(3), outlier({ maxEjectionPercent: 0 }), { now: clock.now });
  failEndpoint(none, "e0", 5);
  assert.equal(none.ejectedCount, 0);
});

test("outlier: with every endpoint ejected, pick still answers (from all of them)", () => {
  const clock = manualClock();
  for (const type of ["RoundRobin", "LeastRequest", "Maglev"] as const) {
    const set = new EndpointSet(
      endpoints(2),
      { ...outlier({ consecutiveFailures: 1 }), loadBalancer: { type } },
      {
        now: clock.now,
        random: seeded(8),
      },
    );
    failEndpoint(set, "e0", 1);
    failEndpoint(set, "e1", 1);
    assert.equal(set.ejectedCount, 2, type);
    const c = counts(Array.from({ length: 40 }, (_, i) => set.pick(`k${i}`)!.value));
    assert.equal(c.size, 2, type);
    const h = set.pick()!;
    assert.notEqual(set.pick(undefined, h), h, type);
  }
});

test("outlier: answers to requests sent before an ejection do not extend it", () => {
  const clock = manualClock();
  const { log, events } = recorder();
  const set = new EndpointSet(endpoints(2), outlier(), { now: clock.now, events });
  const late: EndpointHandle<string>[] = [];
  while (late.length < 5) {
    const h = set.pick()!;
    set.start(h);
    if (h.value === "e0") late.push(h);
    else set.end(h, "success", 1);
  }
  for (const h of late) set.end(h, "http5xx", 1);
  assert.deepEqual(log, ["eject 10.0.0.0:8080 consecutive_failures"]);
  clock.t += 30_000;
  set.pick();
  assert.equal(set.ejectedCount, 0);
});

// --- slow start ---

test("slow start: an endpoint that joins gets a share ramping from ~10 % to its full share", () => {
  const clock = manualClock();
  const policy: ClusterPolicy = { loadBalancer: { type: "RoundRobin" }, slowStartMs: 60_000 };
  const first = new EndpointSet(endpoints(2), policy, { now: clock.now, random: seeded(9) });
  // The very first set's endpoints are established: no ramp.
  assert.deepEqual([...counts(Array.from({ length: 100 }, () => send(first))).values()], [50, 50]);

  const next = new EndpointSet(endpoints(3), policy, { now: clock.now, random: seeded(10) });
  next.inheritFrom(first);
  const shareOfNew = () => (counts(Array.from({ length: 6_000 }, () => send(next))).get("e2") ?? 0) / 6_000;
  const shares: number[] = [];
  for (let t = 0; t <= 60_000; t += 15_000) {
    clock.t = 1_000 + t;
    shares.push(shareOfNew());
  }
  // Its weight is w = 0.1 + 0.9 × t / 60 s next to two endpoints of weight 1: a share of w / (2 + w),
  // 4.8 %, 14 %, 21.6 %, 27.9 %, then a third.
  const expected = [0, 15_000, 30_000, 45_000, 60_000].map((t) => {
    const w = 0.1 + (0.9 * t) / 60_000;
    return w / (2 + w);
  });
  shares.forEach((s, i) =>
    assert.ok(Math.abs(s - expected[i]) < 0.015, `${shares.map((x) => x.toFixed(3))}`),
  );
});

test("slow start: an endpoint returning from ejection ramps up too", () => {
  const clock = manualClock();
  const policy: ClusterPolicy = { ...outlier(), slowStartMs: 10_000 };
  const set = new EndpointSet(endpoints(2), policy, { now: clock.now, random: seeded(11) });
  failEndpoint(set, "e0", 3);
  clock.t += 30_000;
  const share = () => (counts(Array.from({ length: 4_000 }, () => send(set))).get("e0") ?? 0) / 4_000;
  const early = share();
  clock.t += 5_000;
  const middle = share();
  clock.t += 5_000;
  const done = share();
  assert.ok(early < 0.1 && middle > 0.25 && middle < 0.4 && done === 0.5, `${early} ${middle} ${done}`);
});

test("slow start works with LeastRequest and leaves consistent hashing alone", () => {
  const clock = manualClock();
  const ramp = (type: LoadBalancerType) => {
    const policy: ClusterPolicy = { loadBalancer: { type }, slowStartMs: 60_000 };
    const old = new EndpointSet(endpoints(1), policy, { now: clock.now });
    const set = new EndpointSet(endpoints(2), policy, { now: clock.now, random: seeded(12) });
    set.inheritFrom(old);
    return counts(Array.from({ length: 2_000 }, (_, i) => send(set, "success", 1, `k${i}`))).get("e1") ?? 0;
  };
  assert.ok(ramp("LeastRequest") < 200);
  assert.ok(ramp("RingHash") > 700);
});

// --- inheritFrom ---

test("inheritFrom carries in-flight counts by key, and requests ending on the old set count in the new", () => {
  const a = new EndpointSet(endpoints(3), lb("RoundRobin"));
  const started: EndpointHandle<string>[] = [];
  for (let i = 0; i < 6; i++) {
    const h = a.pick()!;
    a.start(h);
    started.push(h);
  }
  // e1 leaves, e3 joins; e0 and e2 keep their state whatever their position.
  const b = new EndpointSet(
    [...endpoints(1, undefined, 3), endpoints(1, undefined, 2)[0], endpoints(1)[0]],
    lb("RoundRobin"),
  );
  b.inheritFrom(a);
  const byValue = new Map<string, EndpointHandle<string>>();
  for (let i = 0; i < 3; i++) {
    const h = b.pick()!;
    byValue.set(h.value, h);
  }
  assert.equal(byValue.get("e0")!.inflight, 2);
  assert.equal(byValue.get("e2")!.inflight, 2);
  assert.equal(byValue.get("e3")!.inflight, 0);
  for (const h of started) a.end(h, "success", 1);
  assert.equal(byValue.get("e0")!.inflight, 0);
  assert.equal(byValue.get("e2")!.inflight, 0);
});

test("inheritFrom carries ejections; failures reported to the old set count in the new one", () => {
  const clock = manualClock();
  const { log, events } = recorder();
  const a = new EndpointSet(endpoints(3), outlier(), { now: clock.now, events });
  failEndpoint(a, "e0", 3);
  failEndpoint(a, "e1", 2);
  let e1 = a.pick()!;
  while (e1.value !== "e1") e1 = a.pick()!;
  a.start(e1);

  const b = new EndpointSet(endpoints(3), outlier(), { now: clock.now, events });
  b.inheritFrom(a);
  assert.equal(b.ejectedCount, 1);
  // The request started on `a` fails: e1's third failure in a row, counted where it matters.
  a.end(e1, "http5xx", 1);
  assert.equal(b.ejectedCount, 2);
  assert.equal(a.ejectedCount, 1);
  assert.deepEqual(log, [
    "eject 10.0.0.0:8080 consecutive_failures",
    "eject 10.0.0.1:8080 consecutive_failures",
  ]);
  assert.deepEqual([...counts(Array.from({ length: 30 }, () => send(b))).keys()], ["e2"]);
  // The old set, still used by a request in progress, skips what the new one ejected.
  assert.deepEqual([...counts(Array.from({ length: 30 }, () => send(a))).keys()], ["e2"]);
  clock.t += 30_000;
  assert.equal(counts(Array.from({ length: 30 }, () => send(b))).size, 3);
  assert.deepEqual(log.slice(2).sort(), ["return 10.0.0.0:8080", "return 10.0.0.1:8080"]);
});

test("inheritFrom reports the return of ejected endpoints that leave, or when outlier detection is dropped", () => {
  const clock = manualClock();
  const { log, events } = recorder();
  const a = new EndpointSet(endpoints(3), outlier(), { now: clock.now, events });
  failEndpoint(a, "e0", 3);
  failEndpoint(a, "e1", 3);
  const b = new EndpointSet(endpoints(2, undefined, 1), outlier(), { now: clock.now, events });
  b.inheritFrom(a);
  assert.deepEqual(log.slice(2), ["return 10.0.0.0:8080"]);
  assert.equal(b.ejectedCount, 1);
  const c = new EndpointSet(
    endpoints(2, undefined, 1),
    { loadBalancer: { type: "RoundRobin" } },
    { now: clock.now, events },
  );
  c.inheritFrom(b);
  assert.deepEqual(log.slice(3), ["return 10.0.0.1:8080"]);
  assert.equal(c.ejectedCount, 0);
  assert.equal(counts(Array.from({ length: 10 }, () => send(c))).size, 2);
});

test("inheritFrom carries the ejection multiplier and latency estimates", () => {
  const clock = manualClock();
  const a = new EndpointSet(
    endpoints(2),
    { ...outlier(), loadBalancer: { type: "PeakEWMA" } },
    {
      now: clock.now,
      random: seeded(14),
    },
  );
  failEndpoint(a, "e0", 3);
  clock.t += 30_000;
  a.pick();
  // e1 is measured slow through `a`.
  for (let i = 0; i < 5; i++) {
    const h = a.pick()!;
    a.start(h);
    a.end(h, "success", h.value === "e1" ? 400 : 5);
  }
  const b = new EndpointSet(
    endpoints(2),
    { ...outlier(), loadBalancer: { type: "PeakEWMA" } },
    {
      now: clock.now,
      random: seeded(15),
    },
  );
  b.inheritFrom(a);
  assert.deepEqual([...counts(Array.from({ length: 20 }, () => send(b, "success", 5))).keys()], ["e0"]);
  // Second ejection within maxEjectionMs of the first: 60 s.
  failEndpoint(b, "e0", 3);
  clock.t += 59_000;
  b.pick();
  assert.equal(b.ejectedCount, 1);
  clock.t += 1_000;
  b.pick();
  assert.equal(b.ejectedCount, 0);
});
