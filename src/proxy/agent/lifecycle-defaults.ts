// The timings of an instance's shutdown, in one place for the agent, the CLI's flags and the docs
// (docs/proxy.md, "Lifecycle"). This file imports nothing, so the CLI can show them in --help
// without loading the proxy.

/**
 * How long a draining sidecar keeps serving after leaving the endpoints, before its app is stopped
 * and its listeners close (`--drain-delay`). Callers stop sending once the control plane's push
 * reaches them, which takes the push debounce plus a compile (tens of milliseconds on one host);
 * two seconds leaves room for a loaded control plane or host.
 */
export const DEFAULT_DRAIN_DELAY_MS = 2_000;

/** How long the app has to exit after SIGTERM before SIGKILL (`weft run --stop-timeout`). */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** How long closing listeners wait for requests still in flight once the app has exited. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;
