// The request metrics as an observer of request events (events.ts): at the end of each exchange,
// weft_requests_total and the duration histogram, on the label set the pipeline chose for it
// (`x.stats`: pre-bound handles per direction, source, destination and route, set as routing learns
// them — "unknown" before a service is known).

// A gRPC request's grpc_status comes from the response head (trailers-only) or the trailers; one
// that ended without any (an HTTP error from an intermediary, a 200 cut short) is labelled as the
// gRPC client will report it (../grpc/status.ts). A client that went away (status 0) has none.

import { grpcStatusLabelOfHttp } from "../grpc/status.ts";
import type { RequestObserver } from "./events.ts";

export const requestMetrics: RequestObserver = {
  onEnd(x, status) {
    let grpc = x.grpcStatus;
    if (grpc === undefined && x.grpc && status !== 0) grpc = grpcStatusLabelOfHttp(status);
    x.stats.get(status, grpc).record((performance.now() - x.startedAt) / 1000);
  },
};
