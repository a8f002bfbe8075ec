// Retries on gRPC statuses: which gRPC answers a route's retry policy retries (RetryPolicy.grpcOn,
// from a GRPCRoute rule's `retry.on`), decided from what is known before anything of the response
// has been sent to the client.
//
// A gRPC error normally arrives as a trailers-only response: one HEADERS frame with END_STREAM and
// grpc-status in it (servers answer errors that way before sending any message). That head is
// retriable: nothing has been committed to the client yet, so the proxy can drop it and try again.
// A status that arrives in trailers after messages is not: the messages are already on their way to
// the client, as in Envoy, whose retry_on gRPC conditions likewise only look at the response head.
//
// A non-200 head without grpc-status (an HTTP intermediary answered) counts as the status the gRPC
// client will report for it (gRPC's HTTP mapping: 503 → UNAVAILABLE), so `unavailable` also retries
// a 503 from an HTTP load balancer in front of the app.

import { GRPC_RETRY_CONDITIONS, type GrpcRetryCondition } from "../../model/grpc-status.ts";
import { grpcStatusOfHead, type HeaderBlock } from "./status.ts";

/** The part of a response head a gRPC retry decision may look at. */
export interface GrpcResponseHead {
  /** HTTP status (:status). */
  status: number;
  headers: HeaderBlock;
  /**
   * The head ended the response (HTTP/2 END_STREAM on HEADERS; for HTTP/1.1, a complete response
   * with an empty body). Only then is a 200 head's grpc-status final.
   */
  endStream: boolean;
}

/**
 * The condition of `conditions` that makes this response retriable, or undefined. Pure and
 * allocation-free; `conditions` is RetryPolicy.grpcOn (an empty or absent list retries nothing).
 */
export function grpcRetryReason(
  conditions: readonly GrpcRetryCondition[] | undefined,
  head: GrpcResponseHead,
): GrpcRetryCondition | undefined {
  if (conditions === undefined || conditions.length === 0) return undefined;
  // A 200 head that does not end the stream is a real response whose status comes in trailers,
  // after the messages: too late to retry, whatever it says.
  if (head.status === 200 && !head.endStream) return undefined;
  const status = grpcStatusOfHead(head.status, head.headers);
  if (status === undefined) return undefined;
  for (let i = 0; i < conditions.length; i++) {
    const c = conditions[i]!;
    if (GRPC_RETRY_CONDITIONS[c] === status) return c;
  }
  return undefined;
}
