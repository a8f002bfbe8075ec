import assert from "node:assert/strict";
import { test } from "node:test";
import {
  grpcStatusFromHttp,
  grpcStatusLabel,
  grpcStatusOf,
  grpcStatusOfHead,
  isGrpcRequest,
} from "./status.ts";

test("isGrpcRequest: gRPC content types with codecs and parameters, not gRPC-Web or look-alikes", () => {
  for (const ct of [
    "application/grpc",
    "application/grpc+proto",
    "application/grpc+json",
    "application/grpc;charset=utf-8",
    "Application/GRPC",
    "application/grpc ; x=y",
  ])
    assert.equal(isGrpcRequest(ct), true, ct);
  for (const ct of [
    undefined,
    "",
    "application/json",
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpcx",
    "application/gr",
    "text/application/grpc",
    ["application/grpc"],
  ])
    assert.equal(isGrpcRequest(ct as string | undefined), false, String(ct));
});

test("grpcStatusOf: strict digits, undefined codes become UNKNOWN, absent stays undefined", () => {
  assert.equal(grpcStatusOf(undefined), undefined);
  assert.equal(grpcStatusOf({}), undefined);
  assert.equal(grpcStatusOf({ "grpc-status": "0" }), 0);
  assert.equal(grpcStatusOf({ "grpc-status": "14" }), 14);
  assert.equal(grpcStatusOf({ "grpc-status": ["4", "14"] }), 4);
  assert.equal(grpcStatusOf({ "grpc-status": 16 }), 16);
  for (const bad of ["17", "99", "-1", " 1", "1 ", "0x1", "1e1", "", "014", "abc", "9".repeat(1000)])
    assert.equal(grpcStatusOf({ "grpc-status": bad }), 2, JSON.stringify(bad));
});

test("grpcStatusFromHttp follows gRPC's HTTP mapping", () => {
  assert.equal(grpcStatusFromHttp(400), 13);
  assert.equal(grpcStatusFromHttp(401), 16);
  assert.equal(grpcStatusFromHttp(403), 7);
  assert.equal(grpcStatusFromHttp(404), 12);
  for (const s of [429, 502, 503, 504]) assert.equal(grpcStatusFromHttp(s), 14);
  for (const s of [500, 418, 301]) assert.equal(grpcStatusFromHttp(s), 2);
});

test("grpcStatusOfHead: trailers-only status wins; a bare 200 head has no status yet", () => {
  assert.equal(grpcStatusOfHead(200, { "grpc-status": "14" }), 14);
  assert.equal(grpcStatusOfHead(503, { "grpc-status": "8" }), 8);
  assert.equal(grpcStatusOfHead(503, {}), 14);
  assert.equal(grpcStatusOfHead(200, { "content-type": "application/grpc" }), undefined);
});

test("grpcStatusLabel: head, then trailers, then UNKNOWN; never an upstream-chosen string", () => {
  assert.equal(grpcStatusLabel(200, {}, { "grpc-status": "0" }), "0");
  assert.equal(grpcStatusLabel(200, { "grpc-status": "5" }, undefined), "5");
  assert.equal(grpcStatusLabel(503, {}, undefined), "14");
  assert.equal(grpcStatusLabel(200, {}, undefined), "2");
  assert.equal(grpcStatusLabel(200, {}, { "grpc-status": "not-a-code-{x}" }), "2");
  // Preallocated: the same string object every time (no per-request allocation).
  assert.equal(
    grpcStatusLabel(200, {}, { "grpc-status": "0" }),
    grpcStatusLabel(200, { "grpc-status": "0" }, undefined),
  );
});
