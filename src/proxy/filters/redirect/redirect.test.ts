import assert from "node:assert/strict";
import { test } from "node:test";
import { redirectLocation } from "./redirect.ts";

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
