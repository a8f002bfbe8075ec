import assert from "node:assert/strict";
import { test } from "node:test";
import { LOCAL_REPLIES, type LocalReplyCode } from "../errors.ts";
import {
  decodeGrpcMessage,
  encodeGrpcMessage,
  GRPC_STATUS_OF_LOCAL_REPLY,
  grpcLocalReply,
  MAX_GRPC_DETAIL,
} from "./local-reply.ts";

const header = (h: string[], name: string) => h[h.indexOf(name) + 1];

test("grpcLocalReply: trailers-only shape with weft's code in grpc-message and x-weft-error", () => {
  const r = grpcLocalReply("upstream_unavailable", "reviews.default has no endpoints");
  assert.equal(r.status, 200);
  assert.equal(r.grpcStatus, 14);
  assert.deepEqual(r.headers, [
    "content-type",
    "application/grpc",
    "grpc-status",
    "14",
    "grpc-message",
    "upstream_unavailable: reviews.default has no endpoints",
    "x-weft-error",
    "upstream_unavailable",
  ]);
});

test("every local reply code has a gRPC status; the ones product.md names map as it says", () => {
  for (const code of Object.keys(LOCAL_REPLIES) as LocalReplyCode[]) {
    const s = GRPC_STATUS_OF_LOCAL_REPLY[code];
    assert.ok(Number.isInteger(s) && s > 0 && s <= 16, code);
  }
  assert.equal(grpcLocalReply("upstream_unavailable", "").grpcStatus, 14);
  assert.equal(grpcLocalReply("timeout", "").grpcStatus, 4);
  assert.equal(grpcLocalReply("no_route", "").grpcStatus, 12);
  assert.equal(grpcLocalReply("untrusted_peer", "").grpcStatus, 7);
  assert.equal(grpcLocalReply("circuit_open", "").grpcStatus, 14);
});

test("grpcLocalReply: a fault's configured gRPC status, or its HTTP status mapped, overrides", () => {
  assert.equal(grpcLocalReply("fault_injected", "abort", { grpcStatus: 8 }).grpcStatus, 8);
  assert.equal(grpcLocalReply("fault_injected", "abort", { httpStatus: 503 }).grpcStatus, 14);
  assert.equal(grpcLocalReply("fault_injected", "abort", { httpStatus: 404 }).grpcStatus, 12);
  assert.equal(grpcLocalReply("fault_injected", "abort", { httpStatus: 200 }).grpcStatus, 0);
  // Not a defined code: ignored, the catalogue's mapping applies.
  assert.equal(grpcLocalReply("fault_injected", "abort", { grpcStatus: 99 }).grpcStatus, 14);
});

test("grpc-message: hostile details become one short, valid, percent-encoded header value", () => {
  const detail = `evil\r\nx-injected: 1\0 é ☃ 😀 100% ${"A".repeat(10_000)}`;
  const msg = header(grpcLocalReply("upstream_reset", detail).headers, "grpc-message")!;
  assert.match(msg, /^[\x20-\x7e]*$/, "printable ASCII only");
  assert.ok(!msg.includes("\r") && !msg.includes("\n"));
  assert.ok(
    msg.startsWith("upstream_reset: evil%0D%0Ax-injected: 1%00 %C3%A9 %E2%98%83 %F0%9F%98%80 100%25 AAA"),
    msg,
  );
  const decoded = decodeGrpcMessage(msg);
  assert.ok(decoded.startsWith(`upstream_reset: ${detail.slice(0, 40)}`));
  assert.equal(decoded.length, "upstream_reset: ".length + MAX_GRPC_DETAIL + 1, "cut, with an ellipsis");
});

test("grpc-message: a surrogate pair at the cut is not split; a lone surrogate becomes U+FFFD", () => {
  const detail = `${"a".repeat(MAX_GRPC_DETAIL - 1)}😀tail`;
  const decoded = decodeGrpcMessage(header(grpcLocalReply("timeout", detail).headers, "grpc-message")!);
  assert.equal(decoded, `timeout: ${"a".repeat(MAX_GRPC_DETAIL - 1)}…`);
  assert.equal(encodeGrpcMessage("x\ud800y"), "x%EF%BF%BDy");
});

test("encode/decode grpc-message round-trip; decoding is lenient with bad escapes", () => {
  for (const s of ["plain", "100%", "a%zz", "naïve ☃", "\t\x7f"])
    assert.equal(decodeGrpcMessage(encodeGrpcMessage(s)), s);
  assert.equal(encodeGrpcMessage("plain text: ok"), "plain text: ok");
  assert.equal(decodeGrpcMessage("50%"), "50%");
  assert.equal(decodeGrpcMessage("%zz%4"), "%zz%4");
});
