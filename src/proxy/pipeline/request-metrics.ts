// The request metrics as an observer of request events (events.ts): at the end of each exchange,
// weft_requests_total and the duration histogram, on the label set the pipeline chose for it
// (`x.stats`: pre-bound handles per direction, source, destination and route, set as routing learns
// them — "unknown" before a service is known).

import type { RequestObserver } from "./events.ts";

export const requestMetrics: RequestObserver = {
  onEnd(x, status) {
    x.stats.get(status, x.grpcStatus).record((performance.now() - x.startedAt) / 1000);
  },
};
