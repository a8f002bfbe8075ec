import assert from "node:assert/strict";
import { test } from "node:test";
import {
  composeHeaderModifiers,
  modifyHeaders,
  redirectLocation,
  rewritePath,
  splitTarget,
} from "./filters.ts";

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

test("ReplacePrefixMatch keeps what follows the prefix on a segment boundary; ReplaceFullPath replaces all", () => {
  const m = { type: "ReplacePrefixMatch" as const, value: "/v2" };
  assert.equal(rewritePath("/api/items/7", m, "/api"), "/v2/items/7");
  assert.equal(rewritePath("/api", m, "/api"), "/v2");
  assert.equal(rewritePath("/api/", m, "/api/"), "/v2/");
  assert.equal(rewritePath("/api/x", { type: "ReplacePrefixMatch", value: "/" }, "/api"), "/x");
  assert.equal(rewritePath("/api", { type: "ReplacePrefixMatch", value: "/" }, "/api"), "/");
  assert.equal(rewritePath("/anything/at/all", { type: "ReplaceFullPath", value: "/fixed" }, "/"), "/fixed");
  assert.deepEqual(splitTarget("/a/b?x=1&y"), ["/a/b", "?x=1&y"]);
  assert.deepEqual(splitTarget("/a"), ["/a", ""]);
});

test("redirect Location: unset parts keep the request's; default ports are left out", () => {
  const req = { host: "shop:8080", path: "/old/cart", query: "?id=3", scheme: "http" as const };
  assert.equal(redirectLocation({}, req, "/"), "http://shop:8080/old/cart?id=3");
  assert.equal(redirectLocation({ scheme: "https" }, req, "/"), "https://shop/old/cart?id=3");
  assert.equal(
    redirectLocation(
      { hostname: "new.example", port: 9000, path: { type: "ReplacePrefixMatch", value: "/new" } },
      req,
      "/old",
    ),
    "http://new.example:9000/new/cart?id=3",
  );
  assert.equal(redirectLocation({ port: 80 }, req, "/"), "http://shop/old/cart?id=3");
  assert.equal(redirectLocation({}, { ...req, host: "[::1]:81" }, "/"), "http://[::1]:81/old/cart?id=3");
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
