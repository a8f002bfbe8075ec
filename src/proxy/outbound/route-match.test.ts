import { test } from "node:test";
import assert from "node:assert/strict";
import { compileRouteMatches, type RequestView } from "./route-match.ts";
import type { RouteMatch } from "../../model/snapshot.ts";

function req(
  path: string,
  opts: { method?: string; headers?: Record<string, string>; query?: string } = {},
): RequestView {
  const q = new URLSearchParams(opts.query ?? "");
  return {
    method: opts.method ?? "GET",
    path,
    header: (n) => opts.headers?.[n],
    queryParam: (n) => q.get(n),
  };
}

function matches(ms: RouteMatch[], r: RequestView): boolean {
  const m = compileRouteMatches(ms);
  return m === undefined || m(r);
}

test("no matches, an empty match and PathPrefix / accept everything (compiled to undefined)", () => {
  assert.equal(compileRouteMatches([]), undefined);
  assert.equal(compileRouteMatches([{}]), undefined);
  assert.equal(compileRouteMatches([{ path: { type: "PathPrefix", value: "/" } }]), undefined);
});

test("PathPrefix is segment-aware, and a trailing slash in the prefix is ignored", () => {
  for (const value of ["/foo", "/foo/"]) {
    const m = [{ path: { type: "PathPrefix" as const, value } }];
    assert.ok(matches(m, req("/foo")), value);
    assert.ok(matches(m, req("/foo/")), value);
    assert.ok(matches(m, req("/foo/bar")), value);
    assert.ok(!matches(m, req("/foobar")), value);
    assert.ok(!matches(m, req("/fo")), value);
    assert.ok(!matches(m, req("/")), value);
  }
});

test("Exact path and whole-path regular expressions", () => {
  assert.ok(matches([{ path: { type: "Exact", value: "/a" } }], req("/a")));
  assert.ok(!matches([{ path: { type: "Exact", value: "/a" } }], req("/a/")));
  const re = [{ path: { type: "RegularExpression" as const, value: "/items/[0-9]+" } }];
  assert.ok(matches(re, req("/items/42")));
  assert.ok(!matches(re, req("/items/42/x")));
  assert.ok(!matches(re, req("/x/items/42")));
});

test("all conditions of a match must hold; any match of a route may", () => {
  const ms: RouteMatch[] = [
    {
      path: { type: "PathPrefix", value: "/api" },
      method: "POST",
      headers: [{ type: "Exact", name: "X-User", value: "jason" }],
      queryParams: [{ type: "RegularExpression", name: "v", value: "2|3" }],
    },
    { headers: [{ type: "RegularExpression", name: "x-canary", value: "yes|true" }] },
  ];
  assert.ok(matches(ms, req("/api/x", { method: "POST", headers: { "x-user": "jason" }, query: "v=3" })));
  assert.ok(!matches(ms, req("/api/x", { method: "GET", headers: { "x-user": "jason" }, query: "v=3" })));
  assert.ok(!matches(ms, req("/api/x", { method: "POST", headers: { "x-user": "jasonx" }, query: "v=3" })));
  assert.ok(!matches(ms, req("/api/x", { method: "POST", headers: { "x-user": "jason" }, query: "v=23" })));
  assert.ok(!matches(ms, req("/api/x", { method: "POST", headers: { "x-user": "jason" } })));
  assert.ok(matches(ms, req("/other", { headers: { "x-canary": "true" } })));
  assert.ok(!matches(ms, req("/other", { headers: { "x-canary": "truex" } })));
});
