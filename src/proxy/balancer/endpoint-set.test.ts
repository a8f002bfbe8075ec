// EndpointSet: the balancing algorithms, retries avoiding the failed endpoint, and locality.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { ClusterPolicy } from "../../model/snapshot.ts";
import { EndpointSet, type EndpointHandle, type EndpointSetOptions } from "./endpoint-set.ts";

import {
  manualClock,
  seeded,
  endpoints,
  lb,
  outlier,
  send,
  counts,
  failEndpoint,
} from "../testing/endpoint-sets.ts";

// --- algorithms ---

test("RoundRobin visits every endpoint once per cycle, in a fixed order from a random start", () => {
  const set = new EndpointSet(endpoints(3), lb("RoundRobin"));
  const picks = Array.from({ length: 30 }, () => send(set));
  for (let i = 3; i < 30; i++) assert.equal(picks[i], picks[i - 3]);
  assert.deepEqual(new Set(picks.slice(0, 3)), new Set(["e0", "e1", "e2"]));
  // The start is random: over many sets, each endpoint is first sometimes.
  const firsts = new Set(
    Array.from({ length: 60 }, () => send(new EndpointSet(endpoints(3), lb("RoundRobin")))),
  );
  assert.equal(firsts.size, 3);
});

test("Random picks every endpoint about equally often", () => {
  const set = new EndpointSet(endpoints(4), lb("Random"), { random: seeded(1) });
  const c = counts(Array.from({ length: 8_000 }, () => send(set)));
  assert.equal(c.size, 4);
  for (const n of c.values()) assert.ok(n > 1_800 && n < 2_200, `${n}`);
});

test("LeastRequest is the default and, idle, alternates exactly like round robin", () => {
  const two = new EndpointSet(endpoints(2), undefined);
  const picks = Array.from({ length: 20 }, () => send(two));
  for (let i = 1; i < 20; i++) assert.notEqual(picks[i], picks[i - 1]);
  const three = new EndpointSet(endpoints(3), { loadBalancer: { type: "LeastRequest" } });
  const p3 = Array.from({ length: 30 }, () => send(three));
  for (let i = 3; i < 30; i++) assert.equal(p3[i], p3[i - 3]);
  assert.equal(new Set(p3).size, 3);
});

test("LeastRequest avoids a busy endpoint and goes back to it once its requests end", () => {
  const set = new EndpointSet(endpoints(3), undefined, { random: seeded(2) });
  let busy = set.pick()!;
  while (busy.value !== "e0") busy = set.pick()!;
  for (let i = 0; i < 4; i++) set.start(busy);
  assert.equal(busy.inflight, 4);
  // Two distinct candidates are compared and e0 is strictly busier than either other: never picked.
  const c = counts(Array.from({ length: 300 }, () => send(set)));
  assert.equal(c.get("e0"), undefined);
  assert.ok(c.get("e1")! > 100 && c.get("e2")! > 100);
  // With one request in flight on e0, it still loses every comparison against an idle endpoint.
  for (let i = 0; i < 3; i++) set.end(busy, "success", 1);
  assert.equal(counts(Array.from({ length: 30 }, () => send(set))).get("e0"), undefined);
  set.end(busy, "success", 1);
  assert.equal(busy.inflight, 0);
  assert.equal(counts(Array.from({ length: 30 }, () => send(set))).get("e0"), 10);
});

test("start/end keep in-flight counts; an end without a start does not go negative", () => {
  const set = new EndpointSet(endpoints(1), undefined);
  const h = set.pick()!;
  set.start(h);
  set.start(h);
  assert.equal(h.inflight, 2);
  set.end(h, "success", 1);
  set.end(h, "local", 1);
  set.end(h, "local", 1);
  assert.equal(h.inflight, 0);
});

/**
 * Open-loop load: a request every `everyMs`, each taking its endpoint's current latency; the clock
 * jumps from event to event. Returns how many requests each endpoint got.
 */
function simulate(
  set: EndpointSet<string>,
  clock: { t: number },
  latencyOf: (value: string) => number,
  durationMs: number,
  everyMs = 2,
): Map<string, number> {
  const pending: { at: number; h: EndpointHandle<string>; latency: number }[] = [];
  const got = new Map<string, number>();
  const end = clock.t + durationMs;
  for (let t = clock.t; t < end; t += everyMs) {
    pending.sort((a, b) => a.at - b.at);
    while (pending.length > 0 && pending[0].at <= t) {
      const p = pending.shift()!;
      clock.t = p.at;
      set.end(p.h, "success", p.latency);
    }
    clock.t = t;
    const h = set.pick()!;
    set.start(h);
    const latency = latencyOf(h.value);
    pending.push({ at: t + latency, h, latency });
    got.set(h.value, (got.get(h.value) ?? 0) + 1);
  }
  for (const p of pending) {
    clock.t = Math.max(clock.t, p.at);
    set.end(p.h, "success", p.latency);
  }
  return got;
}

test("PeakEWMA shifts most of the load away from a slow endpoint, and back once it recovers", () => {
  const clock = manualClock();
  const set = new EndpointSet(endpoints(2), lb("PeakEWMA"), { now: clock.now, random: seeded(3) });
  const jitter = seeded(33);
  let slow = 100;
  // ±20 % noise, as real latencies have: identical constant latencies lock the simulation in step.
  const latency = (v: string) => (v === "e0" ? slow : 5) * (0.8 + 0.4 * jitter());
  const first = simulate(set, clock, latency, 10_000);
  const share = first.get("e0")! / (first.get("e0")! + first.get("e1")!);
  assert.ok(share < 0.05, `slow endpoint got ${(share * 100).toFixed(1)} %`);

  // Round robin would have given it half.
  const rr = simulate(new EndpointSet(endpoints(2), lb("RoundRobin")), manualClock(), latency, 10_000);
  assert.equal(rr.get("e0"), rr.get("e1"));

  // The slow endpoint recovers: it is still probed now and then (an idle endpoint's estimate decays
  // towards 0), its estimate comes down towards its new latency with τ = 10 s, and the load evens
  // out — from a 100 ms estimate to 5 ms, in a few τ.
  slow = 5;
  simulate(set, clock, latency, 60_000);
  const later = simulate(set, clock, latency, 20_000);
  const after = later.get("e0")! / (later.get("e0")! + later.get("e1")!);
  assert.ok(after > 0.35 && after < 0.65, `recovered endpoint got ${(after * 100).toFixed(1)} %`);
});

test("PeakEWMA reacts to a latency peak at once and tries unmeasured endpoints", () => {
  const clock = manualClock();
  const set = new EndpointSet(endpoints(2), lb("PeakEWMA"), { now: clock.now, random: seeded(4) });
  // One slow answer from e0 (peak: taken whole), fast ones from e1: e0 is avoided right away.
  const h0 = set.pick()!;
  const other = set.pick()!;
  assert.notEqual(h0.value, other.value); // unmeasured endpoints tie: round robin
  set.start(h0);
  set.end(h0, "success", 500);
  set.start(other);
  set.end(other, "success", 10);
  const c = counts(Array.from({ length: 50 }, () => send(set, "success", 10)));
  assert.equal(c.get(h0.value), undefined);
});

test("PeakEWMA: a connection failure does not make a broken endpoint look fast", () => {
  const clock = manualClock();
  const set = new EndpointSet(endpoints(2), lb("PeakEWMA"), { now: clock.now, random: seeded(5) });
  const picks: string[] = [];
  for (let i = 0; i < 200; i++) {
    clock.t += 5;
    const h = set.pick()!;
    set.start(h);
    picks.push(h.value);
    // e0 refuses connections within 0.1 ms; e1 answers in 20 ms.
    if (h.value === "e0") set.end(h, "connect", 0.1);
    else set.end(h, "success", 20);
  }
  assert.ok(picks.filter((v) => v === "e0").length < 20);
});

for (const type of ["RingHash", "Maglev"] as const) {
  test(`${type}: a key always reaches the same endpoint; keys spread; no key means a random pick`, () => {
    const set = new EndpointSet(endpoints(5), lb(type), { random: seeded(6) });
    const owner = new Map<string, string>();
    for (let i = 0; i < 2_000; i++) owner.set(`user-${i}`, send(set, "success", 1, `user-${i}`));
    for (let round = 0; round < 3; round++)
      for (const [k, v] of owner) assert.equal(send(set, "success", 1, k), v);
    const spread = counts(owner.values());
    assert.equal(spread.size, 5);
    for (const n of spread.values()) assert.ok(n > 300 && n < 500, `${n}`);
    const unkeyed = counts(Array.from({ length: 1_000 }, () => send(set)));
    assert.equal(unkeyed.size, 5);
  });

  test(`${type}: a new set with one endpoint fewer keeps the other endpoints' keys`, () => {
    const before = new EndpointSet(endpoints(8), lb(type));
    const after = new EndpointSet(endpoints(8).slice(1), lb(type));
    after.inheritFrom(before);
    let moved = 0;
    let movedOther = 0;
    for (let i = 0; i < 4_000; i++) {
      const a = send(before, "success", 1, `k${i}`);
      const b = send(after, "success", 1, `k${i}`);
      if (a !== b) moved++;
      if (a !== b && a !== "e0") movedOther++;
    }
    assert.ok(moved <= (4_000 * 1.5) / 8, `${moved}`);
    // None for the ring; for Maglev, a handful (its slots are reshuffled slightly).
    assert.ok(movedOther <= (type === "RingHash" ? 0 : 40), `${movedOther}`);
  });

  test(`${type}: keys of an ejected endpoint go elsewhere (consistently) and come back on return`, () => {
    const clock = manualClock();
    const policy = { ...outlier({ consecutiveFailures: 1 }), loadBalancer: { type } };
    const set = new EndpointSet(endpoints(4), policy, { now: clock.now });
    const keys = Array.from({ length: 400 }, (_, i) => `k${i}`);
    const home = new Map(keys.map((k) => [k, send(set, "success", 1, k)]));
    const victim = home.get("k0")!;
    const h = set.pick("k0")!;
    set.start(h);
    set.end(h, "gateway", 1);
    assert.equal(set.ejectedCount, 1);
    const away = new Map(keys.map((k) => [k, send(set, "success", 1, k)]));
    for (const k of keys) {
      if (home.get(k) === victim) assert.notEqual(away.get(k), victim);
      else assert.equal(away.get(k), home.get(k));
      assert.equal(send(set, "success", 1, k), away.get(k)); // stable while ejected
    }
    clock.t += 30_000;
    for (const k of keys) assert.equal(send(set, "success", 1, k), home.get(k));
  });
}

test("exclude steers a retry away from the endpoint that just failed, when there is another", () => {
  for (const type of ["RoundRobin", "Random", "LeastRequest", "PeakEWMA", "RingHash", "Maglev"] as const) {
    const set = new EndpointSet(endpoints(3), lb(type), { random: seeded(7) });
    for (let i = 0; i < 50; i++) {
      const first = set.pick(`key-${i}`)!;
      const retry = set.pick(`key-${i}`, first)!;
      assert.notEqual(retry, first, type);
    }
    const single = new EndpointSet(endpoints(1), lb(type));
    const only = single.pick("k")!;
    assert.equal(single.pick("k", only), only);
  }
});

test("an empty set picks undefined", () => {
  const set = new EndpointSet<string>([], undefined);
  assert.equal(set.size, 0);
  assert.equal(set.pick(), undefined);
  assert.equal(set.pick("key"), undefined);
});

// --- locality ---

const zoned = (i: number) => (i < 3 ? "zone-a" : "zone-b");

test("locality: picks stay in the proxy's zone while enough of it is available", () => {
  const policy: ClusterPolicy = {
    ...outlier({ consecutiveFailures: 1 }),
    locality: { enabled: true, minHealthyPercent: 50 },
  };
  const set = new EndpointSet(endpoints(6, zoned), policy, { localZone: "zone-a" });
  const local = counts(Array.from({ length: 60 }, () => send(set)));
  assert.deepEqual([...local.keys()].sort(), ["e0", "e1", "e2"]);
  assert.deepEqual([...local.values()], [20, 20, 20]);

  // One of three local endpoints ejected: 2/3 ≥ 50 %, still local.
  failEndpoint(set, "e0", 1);
  assert.deepEqual([...counts(Array.from({ length: 60 }, () => send(set))).keys()].sort(), ["e1", "e2"]);
  // Two of three ejected: 1/3 < 50 %, fail over to every available endpoint, local ones included.
  failEndpoint(set, "e1", 1);
  assert.equal(set.ejectedCount, 2);
  assert.deepEqual([...counts(Array.from({ length: 80 }, () => send(set))).keys()].sort(), [
    "e2",
    "e3",
    "e4",
    "e5",
  ]);
});

test("locality: off without a local zone, without local endpoints, or when disabled", () => {
  const on: ClusterPolicy = {
    loadBalancer: { type: "RoundRobin" },
    locality: { enabled: true, minHealthyPercent: 0 },
  };
  const everywhere = (set: EndpointSet<string>) => counts(Array.from({ length: 60 }, () => send(set))).size;
  assert.equal(everywhere(new EndpointSet(endpoints(6, zoned), on)), 6);
  assert.equal(everywhere(new EndpointSet(endpoints(6, zoned), on, { localZone: "zone-c" })), 6);
  const off: ClusterPolicy = { ...on, locality: { enabled: false, minHealthyPercent: 0 } };
  assert.equal(everywhere(new EndpointSet(endpoints(6, zoned), off, { localZone: "zone-a" })), 6);
  assert.equal(everywhere(new EndpointSet(endpoints(6, zoned), on, { localZone: "zone-a" })), 3);
});

test("locality: a retry that excludes the only local endpoint goes to another zone", () => {
  const policy: ClusterPolicy = {
    loadBalancer: { type: "LeastRequest" },
    locality: { enabled: true, minHealthyPercent: 100 },
  };
  const set = new EndpointSet(
    endpoints(3, (i) => (i === 0 ? "a" : "b")),
    policy,
    { localZone: "a" },
  );
  const first = set.pick()!;
  assert.equal(first.value, "e0");
  assert.notEqual(set.pick(undefined, first)!.value, "e0");
});

test("locality with consistent hashing: keys stay consistent within the local zone", () => {
  const policy: ClusterPolicy = {
    loadBalancer: { type: "Maglev" },
    locality: { enabled: true, minHealthyPercent: 0 },
  };
  const set = new EndpointSet(endpoints(6, zoned), policy, { localZone: "zone-b" });
  for (let i = 0; i < 200; i++) {
    const v = send(set, "success", 1, `k${i}`);
    assert.ok(["e3", "e4", "e5"].includes(v));
    assert.equal(send(set, "success", 1, `k${i}`), v);
  }
});

test("options default to the real clock and Math.random", () => {
  const opts: EndpointSetOptions = {};
  const set = new EndpointSet(endpoints(2), lb("PeakEWMA"), opts);
  const h = set.pick()!;
  set.start(h);
  set.end(h, "success", 3);
  assert.ok(["e0", "e1"].includes(set.pick()!.value));
});
