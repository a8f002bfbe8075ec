// Timeout defaults and the deadline header, shared by both listeners (so they live below both).

export interface UpstreamTimeouts {
  /** Until the upstream's response headers (ms); 0 disables. */
  responseHeadersMs: number;
  /** Longest pause between body chunks in either direction (ms); 0 disables. */
  bodyIdleMs: number;
}

/**
 * Both listeners' defaults. No response-headers timeout, as in Istio: long polls and slow streaming
 * answers work unless a route sets `timeouts` (whose deadline the calling sidecar then passes on in
 * DEADLINE_HEADER) or the proxy is started with --response-headers-timeout. Body silence is bounded.
 */
export const DEFAULT_TIMEOUTS: UpstreamTimeouts = { responseHeadersMs: 0, bodyIdleMs: 300_000 };

/** Set by the calling sidecar on mesh requests: milliseconds left for the response headers. */
export const DEADLINE_HEADER = "x-weft-deadline-ms";
/** The longest deadline a caller may ask for (a day); longer ones are cut to it. */
export const MAX_DEADLINE_MS = 86_400_000;

/** A DEADLINE_HEADER value: whole milliseconds > 0, capped; undefined when malformed. */
export function parseDeadline(value: string): number | undefined {
  if (!/^[0-9]{1,12}$/.test(value)) return undefined;
  const ms = Number(value);
  return ms > 0 ? Math.min(ms, MAX_DEADLINE_MS) : undefined;
}

/** Where the default response-headers timeout is set, for 504 details. */
export const DEFAULT_TIMEOUT_LIMIT = "weft proxy --response-headers-timeout";
