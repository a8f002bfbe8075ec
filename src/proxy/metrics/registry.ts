// ProxyMetrics, the proxy's metrics registry (product.md §6): Istio-like golden request metrics, local replies, connections
// and TLS. One instance per proxy, shared by its listeners and rendered by the admin server.

import { renderPrometheus } from "./exposition.ts";
import { MetricsRegistry, type CounterSeries, type HistogramSeries, type MetricFamily } from "./families.ts";

export type Direction = "inbound" | "outbound";

export const REQUEST_LABELS = [
  "direction",
  "source_service",
  "destination_service",
  "route",
  "response_code",
  "grpc_status",
] as const;

export const TCP_LABELS = ["direction", "source_service", "destination_service"] as const;

/** The weft_tcp_* handles of one (direction, source, destination), bound once and shared by its connections. */
export interface TcpStats {
  readonly opened: CounterSeries;
  readonly closed: CounterSeries;
  readonly active: CounterSeries;
  readonly received: CounterSeries;
  readonly sent: CounterSeries;
}

const UPGRADE_LABELS = ["direction", "source_service", "destination_service", "protocol"] as const;
const UPGRADE_LABELS_OUTCOME = [...UPGRADE_LABELS, "outcome"] as const;

export class ProxyMetrics {
  readonly registry = new MetricsRegistry();

  readonly requests: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_requests_total",
    "Requests the proxy completed (forwarded or answered locally).",
    REQUEST_LABELS,
  );
  readonly requestDuration: MetricFamily<HistogramSeries> = this.registry.histogram(
    "weft_request_duration_seconds",
    "Time from the request's headers to the end of its response, as seen by the proxy.",
    REQUEST_LABELS,
  );
  readonly localReplies: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_local_replies_total",
    "Responses the proxy produced itself, by stable error code (also sent in x-weft-error).",
    ["direction", "code"],
  );
  readonly downstreamConnectionsActive: MetricFamily<CounterSeries> = this.registry.gauge(
    "weft_downstream_connections_active",
    "Open client connections to a listener.",
    ["direction"],
  );
  readonly downstreamConnectionsTotal: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_downstream_connections_total",
    "Client connections accepted by a listener.",
    ["direction"],
  );
  readonly upstreamConnectionsActive: MetricFamily<CounterSeries> = this.registry.gauge(
    "weft_upstream_connections_active",
    "Open connections from the proxy to upstream endpoints (pooled, keep-alive).",
    ["direction", "tls"],
  );
  readonly upstreamConnectionsTotal: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_upstream_connections_total",
    "Connections the proxy opened to upstream endpoints.",
    ["direction", "tls"],
  );
  readonly upstreamConnectFailures: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_upstream_connect_failures_total",
    "Failed attempts to connect to an upstream endpoint (refused, unreachable, TLS).",
    ["direction", "reason"],
  );
  readonly tlsHandshakeFailures: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_tls_handshake_failures_total",
    "TLS handshakes that failed: inbound (a client refused) or outbound (an upstream refused or mismatched).",
    ["direction", "reason"],
  );
  readonly tlsSessionsResumed: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_tls_sessions_resumed_total",
    "Upstream TLS connections that resumed a previous session (no full handshake).",
    ["direction"],
  );
  readonly downstreamReceivedBytes: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_downstream_received_bytes_total",
    "Bytes received on a listener's client connections, counted when a connection closes.",
    ["direction"],
  );
  readonly downstreamSentBytes: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_downstream_sent_bytes_total",
    "Bytes sent on a listener's client connections, counted when a connection closes.",
    ["direction"],
  );
  // TCP proxying (Service ports with protocol tcp), as Istio's istio_tcp_*: bind with tcpStats().
  readonly tcpOpened: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_tcp_connections_opened_total",
    "TCP connections proxied to a tcp Service port (counted once connected to the destination).",
    TCP_LABELS,
  );
  readonly tcpClosed: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_tcp_connections_closed_total",
    "Proxied TCP connections that ended (either side closed, idle timeout, or an error).",
    TCP_LABELS,
  );
  readonly tcpActive: MetricFamily<CounterSeries> = this.registry.gauge(
    "weft_tcp_connections_active",
    "Proxied TCP connections open now.",
    TCP_LABELS,
  );
  readonly tcpReceivedBytes: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_tcp_received_bytes_total",
    "Bytes received from the client of a proxied TCP connection (counted as they flow).",
    TCP_LABELS,
  );
  readonly tcpSentBytes: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_tcp_sent_bytes_total",
    "Bytes sent to the client of a proxied TCP connection (counted as they flow).",
    TCP_LABELS,
  );
  readonly configUpdates: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_config_updates_total",
    "Config snapshots a listener compiled.",
    ["direction"],
  );
  readonly configRejected: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_config_rejected_total",
    "Config snapshots the proxy NACKed and did not run: inconsistent, compile_failed in a listener, or base_mismatch (a delta for another version; resent whole).",
    ["reason"],
  );

  // Upgraded connections (WebSocket and other HTTP/1.1 Upgrades, ../upgrade/): each is also one
  // request in weft_requests_total (response_code 101 when it became a tunnel).
  readonly upgrades: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_upgrades_total",
    "HTTP/1.1 Upgrade requests by outcome: 101 (tunnel opened), refused (any other answer), error.",
    UPGRADE_LABELS_OUTCOME,
  );
  readonly upgradesActive: MetricFamily<CounterSeries> = this.registry.gauge(
    "weft_upgrades_active",
    "Upgraded connections (tunnels after a 101) open now.",
    UPGRADE_LABELS,
  );
  readonly upgradeDuration: MetricFamily<HistogramSeries> = this.registry.histogram(
    "weft_upgrade_duration_seconds",
    "Lifetime of an upgraded connection, from the 101 to its close.",
    UPGRADE_LABELS,
    [0.1, 1, 10, 60, 300, 900, 1800, 3600, 14400, 86400],
  );
  readonly upgradeReceivedBytes: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_upgrade_received_bytes_total",
    "Bytes the client sent through upgraded connections after the 101.",
    UPGRADE_LABELS,
  );
  readonly upgradeSentBytes: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_upgrade_sent_bytes_total",
    "Bytes sent to the client through upgraded connections after the 101.",
    UPGRADE_LABELS,
  );

  // Traffic management decisions (issue 3): every one visible, per route and destination.
  readonly retries: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_retries_total",
    "Retry attempts sent, by the condition that caused them.",
    ["source_service", "destination_service", "route", "reason"],
  );
  readonly retryBudgetExhausted: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_retry_budget_exhausted_total",
    "Retries not sent because the destination's retry budget (or max concurrent retries) was spent.",
    ["source_service", "destination_service", "route"],
  );
  readonly hedges: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_hedges_total",
    "Hedged attempts sent after the hedge delay; outcome=won when the hedge answered first.",
    ["source_service", "destination_service", "route", "outcome"],
  );
  readonly mirrored: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_mirrored_requests_total",
    "Requests copied to a mirror backend; outcome = the mirror's status class or error code.",
    ["source_service", "destination_service", "route", "outcome"],
  );
  readonly faults: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_faults_injected_total",
    "Faults injected by a FaultInjection filter.",
    ["source_service", "destination_service", "route", "fault"],
  );
  readonly circuitOverflows: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_circuit_breaker_overflows_total",
    "Requests refused because a destination's connection-pool limit was reached.",
    ["source_service", "destination_service", "limit"],
  );
  readonly ejections: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_outlier_ejections_total",
    "Endpoints ejected by outlier detection.",
    ["destination_service", "reason"],
  );
  readonly ejectedEndpoints: MetricFamily<CounterSeries> = this.registry.gauge(
    "weft_outlier_ejected_endpoints",
    "Endpoints currently ejected by outlier detection.",
    ["destination_service"],
  );
  readonly rateLimited: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_rate_limited_total",
    "Inbound requests refused by the local rate limit.",
    ["source_service", "destination_service"],
  );
  readonly healthChecks: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_health_checks_total",
    "Active health checks of the local app, by result.",
    ["result"],
  );
  // On-demand subscriptions (../agent/subscriptions.ts): a first request to a destination the proxy
  // has no config for waits for the control plane to send it (or say it does not exist).
  readonly discoveryRequests: MetricFamily<CounterSeries> = this.registry.counter(
    "weft_discovery_requests_total",
    "Requests that waited for an on-demand subscription, by result: found, unresolved (no such service), timeout, gone (the client left), busy (too many names waited for at once).",
    ["result"],
  );
  readonly discoveryWait: MetricFamily<HistogramSeries> = this.registry.histogram(
    "weft_discovery_wait_seconds",
    "How long a request waited for an on-demand subscription to be answered.",
    [],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly subscriptions: MetricFamily<CounterSeries> = this.registry.gauge(
    "weft_subscriptions",
    "Destinations the proxy holds an on-demand subscription for.",
    [],
  );
  readonly appHealthy: MetricFamily<CounterSeries> = this.registry.gauge(
    "weft_app_healthy",
    "1 when the active health check finds the local app healthy, 0 when not (absent: no check).",
    [],
  );

  /**
   * Forgets the series of outbound destinations that are no longer in the config, so that a sidecar's
   * metrics (and its memory) shrink with its config instead of keeping every destination it ever had.
   * `live` holds "name.namespace" of every service and cluster in the current config. Inbound series
   * are kept: their destination is the proxy's own service.
   */
  retainDestinations(live: ReadonlySet<string>): void {
    const gone = (d: string) => d !== "unknown" && !live.has(d);
    for (const f of [
      this.requests,
      this.requestDuration,
      this.upgrades,
      this.upgradesActive,
      this.upgradeDuration,
      this.upgradeReceivedBytes,
      this.upgradeSentBytes,
    ])
      f.deleteWhere((l) => l[0] === "outbound" && gone(l[2]));
    for (const f of [
      this.retries,
      this.retryBudgetExhausted,
      this.hedges,
      this.mirrored,
      this.faults,
      this.circuitOverflows,
    ])
      f.deleteWhere((l) => gone(l[1]));
    for (const f of [this.ejections, this.ejectedEndpoints]) f.deleteWhere((l) => gone(l[0]));
    // weft_tcp_*: a destination's series go with it once no connection to it is open. A connection
    // still open keeps its series (its bytes, active gauge and close stay truthful) until it ends:
    // then dropTcpStats() removes them, if the destination is still gone.
    const open = new Set<string>();
    for (const a of this.tcpActive.allSeries())
      if (a.labels[0] === "outbound" && a.value > 0) open.add(`${a.labels[1]}\n${a.labels[2]}`);
    for (const f of this.#tcpFamilies())
      f.deleteWhere((l) => l[0] === "outbound" && gone(l[2]) && !open.has(`${l[1]}\n${l[2]}`));
  }

  /**
   * Drops the weft_tcp_* series of one (direction, source, destination): its last connection ended
   * after the destination left the config.
   */
  dropTcpStats(direction: Direction, source: string, destination: string): void {
    for (const f of this.#tcpFamilies())
      f.deleteWhere((l) => l[0] === direction && l[1] === source && l[2] === destination);
  }

  #tcpFamilies(): MetricFamily<CounterSeries>[] {
    return [this.tcpOpened, this.tcpClosed, this.tcpActive, this.tcpReceivedBytes, this.tcpSentBytes];
  }

  tcpStats(direction: Direction, source: string, destination: string): TcpStats {
    return {
      opened: this.tcpOpened.series(direction, source, destination),
      closed: this.tcpClosed.series(direction, source, destination),
      active: this.tcpActive.series(direction, source, destination),
      received: this.tcpReceivedBytes.series(direction, source, destination),
      sent: this.tcpSentBytes.series(direction, source, destination),
    };
  }

  /** A pre-bound pair (counter + histogram) for one label set; bind per route/peer and status, not per request. */
  requestStats(
    direction: Direction,
    source: string,
    destination: string,
    route: string,
    responseCode: number,
    grpcStatus: string,
  ): RequestStats {
    const code = String(responseCode);
    return new RequestStats(
      this.requests.series(direction, source, destination, route, code, grpcStatus),
      this.requestDuration.series(direction, source, destination, route, code, grpcStatus),
    );
  }

  render(): string {
    return renderPrometheus(this.registry);
  }
}

export class RequestStats {
  readonly count: CounterSeries;
  readonly duration: HistogramSeries;
  constructor(count: CounterSeries, duration: HistogramSeries) {
    this.count = count;
    this.duration = duration;
  }
  record(seconds: number): void {
    this.count.value++;
    this.duration.observe(seconds);
  }
}

/**
 * Request stats for one (direction, source, destination, route), cached by response code, so the
 * request path does one array read. Responses carrying grpc-status take the slower keyed path.
 * The code table is allocated on first use: a config of thousands of services builds three of these
 * per service on every change, and most of them never see a request.
 */
export class StatsByCode {
  readonly #metrics: ProxyMetrics;
  readonly #labels: [Direction, string, string, string];
  #byCode: (RequestStats | undefined)[] | undefined;
  #byGrpc?: Map<string, RequestStats>;

  constructor(
    metrics: ProxyMetrics,
    direction: Direction,
    source: string,
    destination: string,
    route: string,
  ) {
    this.#metrics = metrics;
    this.#labels = [direction, source, destination, route];
  }

  get(code: number, grpcStatus: string | undefined): RequestStats {
    if (grpcStatus === undefined) {
      const byCode = (this.#byCode ??= new Array<RequestStats | undefined>(600));
      const s = byCode[code];
      if (s !== undefined) return s;
      return (byCode[code] = this.#make(code, ""));
    }
    const key = `${code}/${grpcStatus}`;
    this.#byGrpc ??= new Map();
    let s = this.#byGrpc.get(key);
    if (s === undefined) this.#byGrpc.set(key, (s = this.#make(code, grpcStatus)));
    return s;
  }

  #make(code: number, grpc: string): RequestStats {
    const [d, src, dst, route] = this.#labels;
    return this.#metrics.requestStats(d, src, dst, route, code, grpc);
  }
}
