import assert from "node:assert/strict";
import { test } from "node:test";
import { grpcRetryReason } from "./retry.ts";

const ALL = ["cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"] as const;

test("grpcRetryReason: trailers-only responses with a listed status are retried, named by condition", () => {
  const head = (s: string) => ({ status: 200, headers: { "grpc-status": s }, endStream: true });
  assert.equal(grpcRetryReason(ALL, head("1")), "cancelled");
  assert.equal(grpcRetryReason(ALL, head("4")), "deadline-exceeded");
  assert.equal(grpcRetryReason(ALL, head("8")), "resource-exhausted");
  assert.equal(grpcRetryReason(ALL, head("13")), "internal");
  assert.equal(grpcRetryReason(ALL, head("14")), "unavailable");
  assert.equal(grpcRetryReason(["unavailable"], head("13")), undefined, "not listed");
  for (const s of ["0", "2", "5", "12", "16", "garbage"])
    assert.equal(grpcRetryReason(ALL, head(s)), undefined, s);
});

test("grpcRetryReason: a status after messages (in trailers) is never retried", () => {
  // A 200 head that does not end the stream: messages follow, the status comes later.
  assert.equal(
    grpcRetryReason(ALL, { status: 200, headers: { "content-type": "application/grpc" }, endStream: false }),
    undefined,
  );
  // Even if such a head carries a grpc-status, what follows is already the client's.
  assert.equal(
    grpcRetryReason(ALL, { status: 200, headers: { "grpc-status": "14" }, endStream: false }),
    undefined,
  );
  // A 200 that ends without any grpc-status: a broken server, not a listed status.
  assert.equal(grpcRetryReason(ALL, { status: 200, headers: {}, endStream: true }), undefined);
});

test("grpcRetryReason: an HTTP intermediary's 503 counts as UNAVAILABLE, as the gRPC client sees it", () => {
  assert.equal(
    grpcRetryReason(["unavailable"], { status: 503, headers: {}, endStream: false }),
    "unavailable",
  );
  assert.equal(grpcRetryReason(["unavailable"], { status: 500, headers: {}, endStream: true }), undefined);
  assert.equal(grpcRetryReason(["internal"], { status: 400, headers: {}, endStream: true }), "internal");
});

test("grpcRetryReason: no conditions, no retries", () => {
  const head = { status: 200, headers: { "grpc-status": "14" }, endStream: true };
  assert.equal(grpcRetryReason(undefined, head), undefined);
  assert.equal(grpcRetryReason([], head), undefined);
});
