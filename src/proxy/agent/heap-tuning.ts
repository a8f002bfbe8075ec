// V8 settings for a sidecar process, applied once at start (startProxy), and for the control plane's
// (`weft control-plane`: a start storm is thousands of handshakes at once). A proxy that accepts many
// new TLS connections allocates fast; V8 then grows its young generation to the maximum (up to
// 16 MB per semi-space, 3 semi-spaces' worth of pages) and keeps those pages resident, which is half
// of the RSS that a burst of mTLS handshakes leaves behind (docs/proxy.md#memory,
// src/proxy/perf/tls-memory.ts). Keeping the young generation at its initial size halves that; CPU
// per proxied request showed no difference above the noise (src/proxy/perf/hop-cpu.ts: 72.1 vs
// 71.8 µs and 79.9 vs 79.2 µs on a moderately busy host; pairs swing ±20 % on a busy one).
//
// --semi-space-growth-factor is read each time V8 would grow the young generation, so it can be set
// after start (the size flags cannot). An operator's own young-generation flags in NODE_OPTIONS win.

import v8 from "node:v8";

/** Applies the settings; false when the operator chose young-generation flags of their own. */
export function tuneHeapForProxy(
  nodeOptions = process.env.NODE_OPTIONS ?? "",
  execArgv: readonly string[] = process.execArgv,
): boolean {
  if (/semi-space/.test(nodeOptions) || execArgv.some((a) => a.includes("semi-space"))) return false;
  v8.setFlagsFromString("--semi-space-growth-factor=1");
  return true;
}
