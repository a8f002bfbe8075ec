import assert from "node:assert/strict";
import { test } from "node:test";
import { compose, type Filter, type Next } from "./filter.ts";

interface Req {
  log: string[];
  answered?: string;
}

const tag = (name: string, answer = false): Filter<Req> => ({
  name,
  onRequest(r, next) {
    r.log.push(name);
    if (answer) r.answered = name;
    else next.run(r);
  },
});

const terminal: Next<Req> = { run: (r) => r.log.push("terminal") };

test("filters run first to last, then the terminal", () => {
  const chain = compose([tag("a"), tag("b"), tag("c")], terminal);
  const r: Req = { log: [] };
  chain.run(r);
  assert.deepEqual(r.log, ["a", "b", "c", "terminal"]);
});

test("a filter that answers stops the chain: nothing after it runs", () => {
  const chain = compose([tag("a"), tag("stop", true), tag("c")], terminal);
  const r: Req = { log: [] };
  chain.run(r);
  assert.deepEqual(r.log, ["a", "stop"]);
  assert.equal(r.answered, "stop");
});

test("an empty chain is the terminal itself (the fast path)", () => {
  assert.equal(compose([], terminal), terminal);
});

test("a composed chain is reused: running it twice builds nothing new and keeps no state", () => {
  const chain = compose([tag("a")], terminal);
  const r1: Req = { log: [] };
  const r2: Req = { log: [] };
  chain.run(r1);
  chain.run(r2);
  assert.deepEqual(r1.log, ["a", "terminal"]);
  assert.deepEqual(r2.log, ["a", "terminal"]);
});
