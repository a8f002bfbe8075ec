// The proxy's admin port (loopback): /ready, /metrics, /config, /clusters, /certs, /drain. Read-only views of
// the running state, plus drain. Nothing secret is ever served: certificates are described by
// SPIFFE ID, serial and dates; keys never leave the TlsMaterial. Every request passes the guard
// first (guard.ts: Host, cross-site origin, and the admin token for POST /drain).

import http from "node:http";
import { once } from "node:events";
import { X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { ProxySnapshot } from "../../model/snapshot.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/exposition.ts";
import type { ProxyMetrics } from "../metrics/registry.ts";
import { certificateInfo } from "../tls/secure-context.ts";
import type { Source, TlsMaterial } from "../types.ts";
import { AdminGuard } from "./guard.ts";

export interface AdminServerOptions {
  metrics: ProxyMetrics;
  config: Source<ProxySnapshot>;
  tls: Source<TlsMaterial>;
  isReady(): boolean;
  onDrain(): Promise<void>;
  /** The admin token that state-changing calls (POST /drain) must present as a bearer credential. */
  token: string;
  /** Destinations with their endpoints' live state (load, ejections); absent = not served. */
  clusters?(): unknown;
  /** On-demand: the names the proxy subscribed to, shown in /config beside the snapshot. */
  subscriptions?(): string[];
}

export interface AdminServer {
  listen(port: number, host?: string): Promise<AddressInfo>;
  address(): AddressInfo | undefined;
  close(): Promise<void>;
}

const ENDPOINTS = "GET /ready, GET /metrics, GET /config, GET /clusters, GET /certs, POST /drain\n";
const SECRET_FIELD = /key|secret|token|password/i;

function send(
  res: http.ServerResponse,
  status: number,
  type: string,
  body: string,
  extra: string[] = [],
): void {
  res.writeHead(status, ["content-type", type, "content-length", String(Buffer.byteLength(body)), ...extra]);
  res.end(body);
}

function text(res: http.ServerResponse, status: number, body: string, extra?: string[]): void {
  send(res, status, "text/plain; charset=utf-8", body, extra);
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  // The snapshot holds no secrets; the replacer is a second line of defence should one ever appear.
  const body = JSON.stringify(
    value,
    (k, v) => (k !== "" && SECRET_FIELD.test(k) && typeof v === "string" ? "[redacted]" : v),
    2,
  );
  send(res, status, "application/json", `${body}\n`);
}

function trustBundleSummary(pem: string): { subject: string; notAfter: string; fingerprint256: string }[] {
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return certs.map((c) => {
    const x = new X509Certificate(c);
    return {
      subject: x.subject,
      notAfter: new Date(x.validTo).toISOString(),
      fingerprint256: x.fingerprint256,
    };
  });
}

export function createAdminServer(opts: AdminServerOptions): AdminServer {
  const missing = (): string[] => {
    const m: string[] = [];
    if (!opts.config.current()) m.push("config snapshot from the control plane");
    if (!opts.tls.current()) m.push("workload certificate");
    if (m.length === 0 && !opts.isReady()) m.push("listeners (starting or draining)");
    return m;
  };

  const guard = new AdminGuard(opts.token);
  // Timeouts are checked every second (Node's default is every 30 s).
  const server = http.createServer({ connectionsCheckingInterval: 1_000 }, (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const method = req.method ?? "GET";
    const read = method === "GET" || method === "HEAD";
    // Only POST changes state; a refused request is answered without reading its body, and closed.
    const verdict = guard.check(req, !read);
    if (!verdict.ok) {
      const extra = verdict.status === 401 ? ["www-authenticate", 'Bearer realm="weft-admin"'] : [];
      return text(res, verdict.status, `${verdict.reason}\n`, [...extra, "connection", "close"]);
    }
    switch (path) {
      case "/ready": {
        if (!read) return text(res, 405, "use GET\n", ["allow", "GET"]);
        const m = missing();
        return m.length === 0
          ? text(res, 200, "ready\n")
          : text(res, 503, `not ready: waiting for ${m.join(", ")}\n`);
      }
      case "/metrics":
        if (!read) return text(res, 405, "use GET\n", ["allow", "GET"]);
        return send(res, 200, PROMETHEUS_CONTENT_TYPE, opts.metrics.render());
      case "/config": {
        if (!read) return text(res, 405, "use GET\n", ["allow", "GET"]);
        const s = opts.config.current();
        if (!s) return text(res, 503, "no config snapshot yet\n");
        return json(res, 200, opts.subscriptions ? { ...s, subscriptions: opts.subscriptions() } : s);
      }
      case "/clusters": {
        if (!read) return text(res, 405, "use GET\n", ["allow", "GET"]);
        if (!opts.clusters) return text(res, 404, `not found; admin endpoints: ${ENDPOINTS}`);
        return json(res, 200, { clusters: opts.clusters() });
      }
      case "/certs": {
        if (!read) return text(res, 405, "use GET\n", ["allow", "GET"]);
        const m = opts.tls.current();
        if (!m) return text(res, 503, "no workload certificate yet\n");
        return json(res, 200, { ...certificateInfo(m), trustBundle: trustBundleSummary(m.trustBundlePem) });
      }
      case "/drain":
        if (method !== "POST") return text(res, 405, "use POST to drain\n", ["allow", "POST"]);
        // Answer first: draining may close this very server once listeners are done.
        text(res, 202, "draining\n", ["connection", "close"]);
        opts.onDrain().catch(() => {});
        return;
      default:
        return text(res, 404, `not found; admin endpoints: ${ENDPOINTS}`);
    }
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  // Every admin answer is small and immediate: a client that takes longer than this to send a request is cut.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;

  return {
    async listen(port: number, host = "127.0.0.1"): Promise<AddressInfo> {
      server.listen(port, host);
      await Promise.race([once(server, "listening"), once(server, "error").then(([e]) => Promise.reject(e))]);
      const addr = server.address() as AddressInfo;
      guard.bound(addr.address, addr.port);
      return addr;
    },
    address: () => (server.address() as AddressInfo | null) ?? undefined,
    async close(): Promise<void> {
      if (!server.listening) return;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
