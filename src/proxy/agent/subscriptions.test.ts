// The proxy's on-demand subscriptions, on an injected clock: concurrent waits for one name share one
// subscribe; a snapshot answers them (found / unresolved); the bound times them out; a cancelled wait
// is counted gone; the set is bounded (least recently used evicted and unsubscribed); an idle name
// expires, a used one does not.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import { Cell } from "./cell.ts";
import {
  Subscriptions,
  type DiscoveryResult,
  type SubscriptionClock,
  type UsageFlag,
} from "./subscriptions.ts";

class FakeClock implements SubscriptionClock {
  t = 0;
  #timers = new Map<number, { at: number; fn: () => void; every?: number }>();
  #id = 0;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => this.#add(fn, ms);
  setInterval = (fn: () => void, ms: number) => this.#add(fn, ms, ms);
  clearTimeout = (h: unknown) => void this.#timers.delete(h as number);
  clearInterval = (h: unknown) => void this.#timers.delete(h as number);
  #add(fn: () => void, ms: number, every?: number): number {
    this.#timers.set(++this.#id, { at: this.t + ms, fn, every });
    return this.#id;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.#timers.entries()]
        .filter(([, x]) => x.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      const [id, x] = due;
      this.t = x.at;
      if (x.every) x.at += x.every;
      else this.#timers.delete(id);
      x.fn();
    }
    this.t = end;
  }
}

function snapshot(version: string, unresolved?: string[]): ProxySnapshot {
  return {
    version,
    proxy: { service: "web", namespace: "default", identity: "", workload: "web-1" },
    mesh: { trustDomain: "weft.local", mtlsMode: "STRICT" },
    inbound: { appAddress: "127.0.0.1", appPort: 8080 },
    outbound: {},
    clusters: {},
    ...(unresolved ? { unresolved } : {}),
  };
}

function setUp(opts: { maxNames?: number; idleMs?: number } = {}) {
  const clock = new FakeClock();
  const config = new Cell<ProxySnapshot>();
  config.set(snapshot("v0"));
  const known = new Map<string, UsageFlag>();
  const sent: string[] = [];
  const metrics = new ProxyMetrics();
  const subs = new Subscriptions({
    config,
    send: {
      subscribe: (names) => sent.push(`+${names.join(",")}`),
      unsubscribe: (names) => sent.push(`-${names.join(",")}`),
    },
    lookup: (n) => known.get(n),
    metrics,
    clock,
    timeoutMs: 3000,
    idleMs: opts.idleMs ?? 60_000,
    maxNames: opts.maxNames,
  });
  const results: [string, DiscoveryResult][] = [];
  const wait = (name: string) => subs.wait(name, (r) => results.push([name, r]));
  const count = (r: DiscoveryResult) => metrics.discoveryRequests.series(r).value;
  return { clock, config, known, sent, subs, results, wait, count, metrics };
}

test("concurrent first requests share one subscribe; the snapshot that brings the service answers them all", () => {
  const { clock, config, known, sent, results, wait, count, metrics } = setUp();
  wait("api");
  wait("api");
  wait("api");
  assert.deepEqual(sent, ["+api"], "one subscribe");
  assert.deepEqual(results, []);
  clock.advance(40);
  known.set("api", { used: false });
  config.set(snapshot("v1"));
  assert.deepEqual(results, [
    ["api", "found"],
    ["api", "found"],
    ["api", "found"],
  ]);
  assert.equal(count("found"), 3);
  assert.equal(metrics.discoveryWait.series().count, 3);
  assert.ok(Math.abs(metrics.discoveryWait.series().sum - 0.12) < 1e-9, "each waited 40 ms");
  // In the config now: answered at once, not counted as a wait.
  wait("api");
  assert.deepEqual(results.at(-1), ["api", "found"]);
  assert.equal(count("found"), 3);
});

test("unresolved names are answered when the snapshot says so, then at once; the bound times out a silent control plane", () => {
  const { clock, config, sent, results, wait, count, subs } = setUp();
  wait("ghost");
  config.set(snapshot("v1", ["ghost"]));
  assert.deepEqual(results, [["ghost", "unresolved"]]);
  assert.ok(subs.isUnresolved("ghost"));
  wait("ghost");
  assert.equal(results.length, 2);
  assert.equal(count("unresolved"), 1, "the second was answered without waiting");
  assert.deepEqual(sent, ["+ghost"]);

  wait("slow");
  clock.advance(2999);
  assert.equal(results.length, 2);
  clock.advance(1);
  assert.deepEqual(results.at(-1), ["slow", "timeout"]);
  assert.equal(count("timeout"), 1);
  assert.deepEqual(subs.names(), ["ghost", "slow"], "the subscription stays: the answer may come later");
});

test("a cancelled wait (client gone) is answered gone once and leaves the others waiting", () => {
  const { config, known, results, wait, count } = setUp();
  const cancel = wait("api");
  wait("api");
  cancel();
  cancel();
  assert.deepEqual(results, [["api", "gone"]]);
  assert.equal(count("gone"), 1);
  known.set("api", { used: false });
  config.set(snapshot("v1"));
  assert.deepEqual(results, [
    ["api", "gone"],
    ["api", "found"],
  ]);
});

test("the set is bounded: the least recently used name is evicted and unsubscribed", () => {
  const { clock, config, known, sent, subs, wait } = setUp({ maxNames: 2, idleMs: 400 });
  for (const n of ["a", "b"]) {
    wait(n);
    known.set(n, { used: false });
  }
  config.set(snapshot("v1"));
  // "a" is used (the listener sets the flag); the sweep moves it to most recently used.
  known.get("a")!.used = true;
  clock.advance(100);
  wait("c");
  assert.deepEqual(sent, ["+a", "+b", "-b", "+c"]);
  assert.deepEqual(subs.names().sort(), ["a", "c"]);
});

test("a name not used for the idle time is unsubscribed; one in use stays", () => {
  const { clock, config, known, sent, subs, wait, metrics } = setUp({ idleMs: 1000 });
  for (const n of ["used", "idle"]) {
    wait(n);
    known.set(n, { used: false });
  }
  config.set(snapshot("v1"));
  assert.equal(metrics.subscriptions.series().value, 2);
  for (let i = 0; i < 8; i++) {
    known.get("used")!.used = true; // a request every 250 ms
    clock.advance(250);
  }
  assert.deepEqual(sent, ["+used", "+idle", "-idle"]);
  assert.deepEqual(subs.names(), ["used"]);
  assert.equal(metrics.subscriptions.series().value, 1);
  subs.stop();
});

test("an app calling ever new names cannot grow the set past its bound while they are waited for", () => {
  const { sent, subs, results, wait, count } = setUp({ maxNames: 3 });
  for (const n of ["a", "b", "c", "d", "e"]) wait(n);
  assert.deepEqual(sent, ["+a", "+b", "+c"]);
  assert.deepEqual(results, [
    ["d", "busy"],
    ["e", "busy"],
  ]);
  assert.equal(count("busy"), 2);
  assert.equal(subs.names().length, 3);
});

test("a sweep visits each name once, even when every lookup says used (each a fresh flag)", () => {
  const { clock, config, sent, subs } = setUp({ idleMs: 1000 });
  // A lookup whose answer is a new object each time: clearing its flag changes nothing. A sweep that
  // moved used names to the end of the map while walking it would visit them forever.
  const fresh = new Subscriptions({
    config,
    send: { subscribe: (n) => sent.push(`+${n.join(",")}`), unsubscribe: (n) => sent.push(`-${n}`) },
    lookup: () => (present ? { used: true } : undefined),
    clock,
    idleMs: 1000,
  });
  let present = false;
  for (const n of ["c", "a", "b"]) fresh.wait(n, () => {});
  present = true;
  config.set(snapshot("v1"));
  clock.advance(5000);
  assert.deepEqual(fresh.names(), ["c", "a", "b"], "all kept, in their order");
  fresh.stop();
  subs.stop();
});
