import { test } from "node:test";
import assert from "node:assert/strict";
import { h1RequestToH2, h2ListToH1, h2RequestToH1, isConnectionSpecific } from "./h2-headers.ts";

const target = { method: "POST", path: "/a?b=1", scheme: "https" as const, defaultAuthority: "svc:80" };

test("HTTP/1.1 → h2: Host becomes :authority, connection-specific headers dropped, TE: trailers kept, repeats kept in order", () => {
  const h = h1RequestToH2(target, [
    "Host",
    "reviews:9080",
    "Connection",
    "keep-alive, x-hop",
    "Keep-Alive",
    "timeout=5",
    "Proxy-Connection",
    "keep-alive",
    "Transfer-Encoding",
    "chunked",
    "Upgrade",
    "h2c",
    "HTTP2-Settings",
    "AAMAAABkAAQAAP__",
    "TE",
    "trailers",
    "Accept",
    "a",
    "accept",
    "b",
    "X-Case",
    "Keep",
  ]);
  assert.deepEqual(h, {
    ":method": "POST",
    ":scheme": "https",
    ":path": "/a?b=1",
    ":authority": "reviews:9080",
    te: "trailers",
    accept: ["a", "b"],
    "x-case": "Keep",
  });
});

test("HTTP/1.1 → h2: TE other than trailers is dropped; no Host uses the default authority", () => {
  const h = h1RequestToH2(target, ["te", "gzip, trailers"]);
  assert.equal(h.te, undefined);
  assert.equal(h[":authority"], "svc:80");
  assert.equal(isConnectionSpecific("te", " Trailers "), false);
});

test("h2 response/trailers → HTTP/1.1: pseudo-headers and connection-specific headers removed", () => {
  assert.deepEqual(
    h2ListToH1([":status", "200", "content-type", "text/plain", "connection", "close", "grpc-status", "0"]),
    ["content-type", "text/plain", "grpc-status", "0"],
  );
});

test("h2 request → HTTP/1.1: :authority becomes Host (first), crumbled cookies are joined", () => {
  const h = h2RequestToH1([
    ":method",
    "GET",
    ":scheme",
    "http",
    ":authority",
    "svc",
    ":path",
    "/x",
    "cookie",
    "a=1",
    "accept",
    "*/*",
    "cookie",
    "b=2",
    "host",
    "ignored",
    "transfer-encoding",
    "chunked",
  ]);
  assert.deepEqual(h, {
    method: "GET",
    path: "/x",
    headers: ["host", "svc", "accept", "*/*", "cookie", "a=1; b=2"],
  });
});
