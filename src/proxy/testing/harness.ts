// Listeners in-process for tests: config and certificate as settable Cells, a fresh metrics registry.

import type { ProxySnapshot } from "../../model/snapshot.ts";
import { Cell } from "../agent/cell.ts";
import {
  createInboundListener,
  type InboundListener,
  type InboundListenerOptions,
} from "../inbound/listener.ts";
import { ProxyMetrics } from "../metrics/registry.ts";
import {
  createOutboundListener,
  type OutboundListener,
  type OutboundListenerOptions,
} from "../outbound/listener.ts";
import type { TlsMaterial } from "../types.ts";

export interface Running<L> {
  port: number;
  listener: L;
  config: Cell<ProxySnapshot>;
  tls: Cell<TlsMaterial>;
  metrics: ProxyMetrics;
  close(): Promise<void>;
}

type Extra<O> = Omit<O, "config" | "tls" | "metrics">;

/** WEFT_TEST_TRANSPORT=undici runs the listener tests on undici's Pool instead of weft's own. */
const transport = process.env.WEFT_TEST_TRANSPORT === "undici" ? "undici" : "h1";

export async function startOutbound(
  snapshot?: ProxySnapshot,
  opts: Extra<OutboundListenerOptions> & { tls?: TlsMaterial; metrics?: ProxyMetrics } = {},
): Promise<Running<OutboundListener>> {
  const config = new Cell<ProxySnapshot>();
  const tls = new Cell<TlsMaterial>();
  if (snapshot) config.set(snapshot);
  if (opts.tls) tls.set(opts.tls);
  const metrics = opts.metrics ?? new ProxyMetrics();
  const listener = createOutboundListener({
    ...opts,
    pool: { transport, ...opts.pool },
    config,
    tls,
    metrics,
  });
  const { port } = await listener.listen(0, "127.0.0.1");
  return { port, listener, config, tls, metrics, close: () => listener.close() };
}

export async function startInbound(
  snapshot: ProxySnapshot | undefined,
  material: TlsMaterial | undefined,
  opts: Extra<InboundListenerOptions> & { metrics?: ProxyMetrics } = {},
): Promise<Running<InboundListener>> {
  const config = new Cell<ProxySnapshot>();
  const tls = new Cell<TlsMaterial>();
  if (snapshot) config.set(snapshot);
  if (material) tls.set(material);
  const metrics = opts.metrics ?? new ProxyMetrics();
  const listener = createInboundListener({
    ...opts,
    pool: { transport, ...opts.pool },
    config,
    tls,
    metrics,
  });
  const { port } = await listener.listen(0, "127.0.0.1");
  return { port, listener, config, tls, metrics, close: () => listener.close() };
}

/**
 * The value of one series in Prometheus text: the first line of `name` whose labels include all of
 * `labels`. Undefined when there is none.
 */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const brace = line.indexOf("}");
    const labelText = brace === -1 ? "" : line.slice(name.length + 1, brace);
    const parts = labelText.split(",");
    if (wanted.every((w) => parts.includes(w))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}
