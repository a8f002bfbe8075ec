// A gRPC caller's deadline as the request's (issue 7 §2): a gRPC request with a well-formed
// grpc-timeout ends when it does, on both sidecars — before the response head with a
// DEADLINE_EXCEEDED-shaped local reply, after it by resetting the stream — and the upstream sees
// grpc-timeout again with only the time left (Exchange.hopHeaders, routed-request.ts per attempt).
// A route's request timeout runs beside it, so the shorter of the two wins. A malformed value is
// passed on as it came and not enforced here (timeout.ts says why).

import type { Exchange } from "../pipeline/exchange.ts";
import { formatGrpcTimeout, parseGrpcTimeout } from "./timeout.ts";

/** Starts the exchange's deadline from its grpc-timeout, if it is a gRPC request with a valid one. */
export function honourGrpcTimeout(x: Exchange): void {
  if (!x.grpc) return;
  const t = parseGrpcTimeout(x.grpcTimeout);
  if (t === undefined || !t.ok) return;
  x.setDeadline(t.ms, `the caller's gRPC deadline (grpc-timeout ${x.grpcTimeout}) passed`);
}

/**
 * In an upstream head built by hopHeaders, sets grpc-timeout to `ms` (the time left of the shorter
 * of the caller's deadline and the route's timeouts). The head is the attempt's own copy.
 */
export function setGrpcTimeout(headers: string[], ms: number): void {
  for (let i = 0; i < headers.length; i += 2)
    if (headers[i] === "grpc-timeout") {
      headers[i + 1] = formatGrpcTimeout(ms);
      return;
    }
}
