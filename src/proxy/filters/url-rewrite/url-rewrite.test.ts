import assert from "node:assert/strict";
import { test } from "node:test";
import { rewritePath, splitTarget } from "./url-rewrite.ts";

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
