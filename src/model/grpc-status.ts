// gRPC status codes (grpc/grpc doc/statuscodes.md): the one table of names and numbers that the
// validator (FaultInjection's abort.grpcStatus, GRPCRoute retry conditions), the compiler and the
// proxy's gRPC modules (src/proxy/grpc/) share. Lives in model/ because it is part of the resources'
// vocabulary and the proxy must not be imported by the control plane.

export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusName = keyof typeof GRPC_STATUS;
export type GrpcStatusCode = (typeof GRPC_STATUS)[GrpcStatusName];

export const GRPC_STATUS_NAMES = Object.keys(GRPC_STATUS) as GrpcStatusName[];

/** Name of a status number ("UNAVAILABLE" for 14); undefined outside 0–16. */
export function grpcStatusName(code: number): GrpcStatusName | undefined {
  return GRPC_STATUS_NAMES[code];
}

/**
 * gRPC statuses a retry policy may name, spelled as Envoy's `x-envoy-retry-grpc-on` / `retry_on`
 * values and gRPC's own retry policy (lower-case, dashes): each retries a response whose grpc-status
 * is that code.
 */
export const GRPC_RETRY_CONDITIONS = {
  cancelled: GRPC_STATUS.CANCELLED,
  "deadline-exceeded": GRPC_STATUS.DEADLINE_EXCEEDED,
  internal: GRPC_STATUS.INTERNAL,
  "resource-exhausted": GRPC_STATUS.RESOURCE_EXHAUSTED,
  unavailable: GRPC_STATUS.UNAVAILABLE,
} as const;

export type GrpcRetryCondition = keyof typeof GRPC_RETRY_CONDITIONS;
export const GRPC_RETRY_CONDITION_NAMES = Object.keys(GRPC_RETRY_CONDITIONS) as GrpcRetryCondition[];

/**
 * The HTTP status a gRPC status is closest to, for a non-gRPC caller of a route whose fault aborts
 * with a gRPC status (the mapping grpc-gateway and Google APIs use: google.rpc.Code's documented
 * HTTP equivalents).
 */
export const HTTP_STATUS_OF_GRPC: Record<GrpcStatusName, number> = {
  OK: 200,
  CANCELLED: 499,
  UNKNOWN: 500,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 400,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
  UNAUTHENTICATED: 401,
};
