import assert from "node:assert/strict";
import { test } from "node:test";
import { composeHeaderModifiers, modifyHeaders } from "./header-list.ts";

test("header modifier: set replaces every value, add appends, remove drops; the protected prefix is kept", () => {
  const list = ["host", "a", "X-Env", "prod", "accept", "1", "x-env", "other", "x-drop", "y"];
  modifyHeaders(
    list,
    {
      set: [{ name: "x-env", value: "canary" }],
      add: [{ name: "accept", value: "2" }],
      remove: ["x-drop", "host"],
    },
    2,
  );
  assert.deepEqual(list, ["host", "a", "accept", "1", "x-env", "canary", "accept", "2"]);
});

test("composing two header modifiers does what applying one after the other does", () => {
  const a = {
    set: [
      { name: "x-a", value: "1" },
      { name: "x-b", value: "1" },
    ],
    add: [
      { name: "x-c", value: "1" },
      { name: "x-d", value: "1" },
    ],
    remove: ["x-e"],
  };
  const b = {
    set: [{ name: "x-b", value: "2" }],
    add: [{ name: "x-a", value: "2" }],
    remove: ["x-d", "x-f"],
  };
  const start = () => ["x-a", "0", "x-d", "0", "x-e", "0", "x-f", "0", "x-g", "0"];
  const sequential = start();
  modifyHeaders(sequential, a);
  modifyHeaders(sequential, b);
  const composed = start();
  modifyHeaders(composed, composeHeaderModifiers(a, b)!);
  const sorted = (l: string[]) =>
    l.reduce<string[]>((out, v, i) => (i % 2 ? out : [...out, `${v}=${l[i + 1]}`]), []).sort();
  assert.deepEqual(sorted(composed), sorted(sequential));
  assert.deepEqual(sorted(sequential), ["x-a=1", "x-a=2", "x-b=2", "x-c=1", "x-g=0"]);
  assert.equal(composeHeaderModifiers(undefined, b), b);
  assert.equal(composeHeaderModifiers(a, undefined), a);
});
