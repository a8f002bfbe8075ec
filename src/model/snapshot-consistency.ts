// Whether a proxy snapshot is internally consistent: every section present with the shape the proxy
// relies on, every cluster a route (or mirror) names exists, regular expressions compile, ports are
// ports, endpoints have addresses, consistent-hash tables have sizes the balancer can build. A pure
// function over an untrusted value (go-control-plane's `Consistent()`), run on both sides of the
// config stream: the control plane checks every snapshot it compiled before sending it (a violation
// there is a compiler bug: logged loudly, never sent), and the proxy checks every snapshot it
// receives before compiling it (a violation is NACKed with the list, and the proxy runs on).
//
// It returns every violation with its field path (up to MAX_SNAPSHOT_VIOLATIONS), not just the first.

import { MTLS_MODES, PATH_MATCH_TYPES, PROTOCOLS } from "./resources.ts";
import type { LoadBalancerType } from "./snapshot.ts";
import {
  isPrime,
  key,
  MAX_SNAPSHOT_VIOLATIONS,
  quoted,
  SnapshotWalk,
  type SnapshotViolation,
} from "./snapshot-walk.ts";
import { HASH_BALANCERS, LOAD_BALANCER_TYPES, TRAFFIC_POLICY_LIMITS } from "./traffic-defaults.ts";
import { subscriptionNameProblem } from "./subscription-names.ts";
import { RETRY_CONDITIONS } from "./validate-httproute-retry.ts";

export type { SnapshotViolation } from "./snapshot-walk.ts";

const MATCH_TYPES = ["Exact", "RegularExpression"] as const;
const REDIRECT_CODES = [301, 302, 303, 307, 308];

/**
 * Every violation found (empty when the snapshot is consistent), and how many more were not kept.
 * `known`: sections (a cluster, an outbound service) already found consistent in an earlier snapshot
 * and shared with this one, as the control plane's compiler shares them: their shape is not walked
 * again, only what depends on this snapshot (the cluster's key, the clusters its routes name).
 */
export function snapshotViolations(
  snapshot: unknown,
  known?: WeakSet<object>,
): { violations: SnapshotViolation[]; more: number } {
  const w = new SnapshotWalk();
  const s = w.object("snapshot", snapshot);
  if (s) {
    w.string("version", s.version, { max: 128 });
    const proxy = w.object("proxy", s.proxy);
    if (proxy) {
      for (const f of ["service", "namespace", "workload"]) w.string(`proxy.${f}`, proxy[f]);
      // Empty for a proxy whose certificate carries no mesh identity (tests, sidecar-less callers).
      w.string("proxy.identity", proxy.identity, { empty: true });
      w.string("proxy.zone", proxy.zone, { optional: true });
    }
    const mesh = w.object("mesh", s.mesh);
    if (mesh) {
      w.string("mesh.trustDomain", mesh.trustDomain);
      w.oneOf("mesh.mtlsMode", mesh.mtlsMode, MTLS_MODES);
    }
    checkInbound(w, s.inbound);
    const clusters = w.object("clusters", s.clusters);
    if (clusters)
      for (const [k, c] of Object.entries(clusters)) {
        if (known?.has(c as object) && (c as { name?: unknown }).name === k) continue;
        checkCluster(w, `clusters${key(k)}`, k, c);
      }
    const outbound = w.object("outbound", s.outbound);
    const exists = (name: unknown) =>
      clusters !== undefined && typeof name === "string" && Object.hasOwn(clusters, name);
    if (outbound)
      for (const [k, svc] of Object.entries(outbound)) {
        if (known?.has(svc as object)) checkReferences(w, `outbound${key(k)}`, svc as KnownService, exists);
        else checkService(w, `outbound${key(k)}`, svc, exists);
      }
    checkUnresolved(w, s.unresolved);
  }
  return { violations: w.violations, more: w.dropped };
}

/** On-demand names that name no Service: sorted, distinct, each a subscription name. */
function checkUnresolved(w: SnapshotWalk, v: unknown): void {
  const list = w.array("unresolved", v, true);
  if (list === undefined) return;
  for (let i = 0; i < list.length; i++) {
    const problem = subscriptionNameProblem(list[i]);
    if (problem !== undefined) w.report(`unresolved[${i}]`, problem);
    else if (i > 0 && !((list[i - 1] as string) < (list[i] as string)))
      w.report(`unresolved[${i}]`, "must be sorted, without duplicates");
  }
}

/** "path: message; path: message (and 3 more)": the violations in one line, for a NACK or a log. */
export function describeViolations(r: { violations: SnapshotViolation[]; more: number }, show = 5): string {
  const shown = r.violations.slice(0, show).map((v) => `${v.path}: ${v.message}`);
  const rest = r.violations.length - shown.length + r.more;
  return shown.join("; ") + (rest > 0 ? ` (and ${rest} more)` : "");
}

export { MAX_SNAPSHOT_VIOLATIONS };

function checkInbound(w: SnapshotWalk, v: unknown): void {
  const inbound = w.object("inbound", v);
  if (!inbound) return;
  w.ip("inbound.appAddress", inbound.appAddress);
  w.port("inbound.appPort", inbound.appPort);
  w.array("inbound.ports", inbound.ports, true)?.forEach((v, i) => {
    const p = w.object(`inbound.ports[${i}]`, v);
    if (!p) return;
    w.port(`inbound.ports[${i}].port`, p.port);
    w.port(`inbound.ports[${i}].appPort`, p.appPort);
    w.oneOf(`inbound.ports[${i}].protocol`, p.protocol, PROTOCOLS);
  });
  const rl = w.object("inbound.rateLimit", inbound.rateLimit, true);
  if (rl) {
    w.number("inbound.rateLimit.requestsPerSecond", rl.requestsPerSecond, {
      min: 0,
      max: 1e9,
      fraction: true,
    });
    if (rl.requestsPerSecond === 0) w.report("inbound.rateLimit.requestsPerSecond", "must be greater than 0");
    w.number("inbound.rateLimit.burst", rl.burst, { min: 1, max: 2 ** 31 - 1 });
    w.boolean("inbound.rateLimit.perSource", rl.perSource);
  }
  const hc = w.object("inbound.healthCheck", inbound.healthCheck, true);
  if (hc) {
    const p = "inbound.healthCheck";
    const http = w.object(`${p}.http`, hc.http, true);
    const tcp = w.object(`${p}.tcp`, hc.tcp, true);
    if ((http === undefined) === (tcp === undefined)) w.report(p, "must have exactly one of http and tcp");
    if (http) {
      const path = w.string(`${p}.http.path`, http.path);
      if (path !== undefined && !path.startsWith("/")) w.report(`${p}.http.path`, 'must start with "/"');
      const statuses = w.array(`${p}.http.expectedStatuses`, http.expectedStatuses);
      if (statuses && statuses.length > TRAFFIC_POLICY_LIMITS.expectedStatuses)
        w.report(
          `${p}.http.expectedStatuses`,
          `may hold at most ${TRAFFIC_POLICY_LIMITS.expectedStatuses} codes`,
        );
      else
        statuses?.forEach((c, i) => w.number(`${p}.http.expectedStatuses[${i}]`, c, { min: 100, max: 599 }));
    }
    w.number(`${p}.intervalMs`, hc.intervalMs, { min: 1, max: 2 ** 31 - 1 });
    w.number(`${p}.timeoutMs`, hc.timeoutMs, { min: 1, max: 2 ** 31 - 1 });
    w.number(`${p}.healthyThreshold`, hc.healthyThreshold, { min: 1, max: 1000 });
    w.number(`${p}.unhealthyThreshold`, hc.unhealthyThreshold, { min: 1, max: 1000 });
  }
}

function checkService(w: SnapshotWalk, p: string, v: unknown, exists: (cluster: unknown) => boolean): void {
  const svc = w.object(p, v);
  if (!svc) return;
  w.string(`${p}.name`, svc.name, { max: 253 });
  w.string(`${p}.namespace`, svc.namespace, { max: 253 });
  w.array(`${p}.hosts`, svc.hosts)?.forEach((h, i) => w.string(`${p}.hosts[${i}]`, h, { max: 253 }));
  w.port(`${p}.port`, svc.port, true);
  w.oneOf(`${p}.protocol`, svc.protocol, PROTOCOLS);
  const routes = w.array(`${p}.routes`, svc.routes);
  routes?.forEach((r, i) => checkRoute(w, `${p}.routes[${i}]`, r, exists));
}

interface KnownService {
  routes: { backends: { cluster: unknown; invalid?: unknown }[]; mirrors?: { cluster: unknown }[] }[];
}

/** Only the cluster references of a service whose shape was checked before (see `known`). */
function checkReferences(
  w: SnapshotWalk,
  p: string,
  svc: KnownService,
  exists: (c: unknown) => boolean,
): void {
  svc.routes.forEach((r, i) => {
    r.backends.forEach((b, j) => {
      if (b.invalid === undefined && !exists(b.cluster))
        w.report(`${p}.routes[${i}].backends[${j}].cluster`, unknownCluster(b.cluster));
    });
    r.mirrors?.forEach((m, j) => {
      if (!exists(m.cluster)) w.report(`${p}.routes[${i}].mirrors[${j}].cluster`, unknownCluster(m.cluster));
    });
  });
}

function checkRoute(w: SnapshotWalk, p: string, v: unknown, exists: (cluster: unknown) => boolean): void {
  const r = w.object(p, v);
  if (!r) return;
  w.string(`${p}.name`, r.name);
  w.array(`${p}.matches`, r.matches)?.forEach((m, i) => checkMatch(w, `${p}.matches[${i}]`, m));
  w.array(`${p}.backends`, r.backends)?.forEach((b, i) => {
    const backend = w.object(`${p}.backends[${i}]`, b);
    if (!backend) return;
    // An invalid reference (Gateway API ResolvedRefs=False) names no cluster: its share is answered 500.
    const invalid = w.object(`${p}.backends[${i}].invalid`, backend.invalid, true);
    if (invalid) w.string(`${p}.backends[${i}].invalid.message`, invalid.message);
    else if (!exists(backend.cluster))
      w.report(`${p}.backends[${i}].cluster`, unknownCluster(backend.cluster));
    w.number(`${p}.backends[${i}].weight`, backend.weight, { min: 0, max: 1_000_000 });
  });
  w.array(`${p}.mirrors`, r.mirrors, true)?.forEach((m, i) => {
    const mirror = w.object(`${p}.mirrors[${i}]`, m);
    if (!mirror) return;
    if (!exists(mirror.cluster)) w.report(`${p}.mirrors[${i}].cluster`, unknownCluster(mirror.cluster));
    w.percent(`${p}.mirrors[${i}].percent`, mirror.percent);
  });
  const filters = w.object(`${p}.filters`, r.filters, true);
  const redirect = filters && w.object(`${p}.filters.redirect`, filters.redirect, true);
  if (redirect) {
    if (!REDIRECT_CODES.includes(redirect.statusCode as number))
      w.report(`${p}.filters.redirect.statusCode`, `must be one of ${REDIRECT_CODES.join(", ")}`);
    if (redirect.port !== undefined) w.port(`${p}.filters.redirect.port`, redirect.port);
  }
  const timeouts = w.object(`${p}.timeouts`, r.timeouts, true);
  if (timeouts) {
    w.millis(`${p}.timeouts.requestMs`, timeouts.requestMs);
    w.millis(`${p}.timeouts.backendRequestMs`, timeouts.backendRequestMs);
  }
  checkResilience(w, p, r);
}

function checkResilience(w: SnapshotWalk, p: string, r: Record<string, unknown>): void {
  const retry = w.object(`${p}.retry`, r.retry, true);
  if (retry) {
    w.number(`${p}.retry.attempts`, retry.attempts, { min: 0, max: 100 });
    w.array(`${p}.retry.on`, retry.on)?.forEach((c, i) =>
      w.oneOf(`${p}.retry.on[${i}]`, c, RETRY_CONDITIONS),
    );
    w.array(`${p}.retry.codes`, retry.codes)?.forEach((c, i) =>
      w.number(`${p}.retry.codes[${i}]`, c, { min: 100, max: 599 }),
    );
    const backoff = w.object(`${p}.retry.backoff`, retry.backoff);
    if (backoff) {
      w.millis(`${p}.retry.backoff.baseMs`, backoff.baseMs, false);
      w.millis(`${p}.retry.backoff.maxMs`, backoff.maxMs, false);
    }
    w.boolean(`${p}.retry.nonIdempotent`, retry.nonIdempotent);
    w.number(`${p}.retry.maxBufferedBodyBytes`, retry.maxBufferedBodyBytes, { min: 0, max: 2 ** 31 - 1 });
  }
  const hedge = w.object(`${p}.hedge`, r.hedge, true);
  if (hedge) {
    w.millis(`${p}.hedge.delayMs`, hedge.delayMs, false);
    w.number(`${p}.hedge.maxHedges`, hedge.maxHedges, { min: 1, max: 10 });
  }
  const fault = w.object(`${p}.fault`, r.fault, true);
  const delay = fault && w.object(`${p}.fault.delay`, fault.delay, true);
  if (delay) {
    w.millis(`${p}.fault.delay.ms`, delay.ms, false);
    w.percent(`${p}.fault.delay.percent`, delay.percent);
  }
  const abort = fault && w.object(`${p}.fault.abort`, fault.abort, true);
  if (abort) {
    w.number(`${p}.fault.abort.status`, abort.status, { min: 200, max: 599 });
    w.percent(`${p}.fault.abort.percent`, abort.percent);
  }
}

function checkMatch(w: SnapshotWalk, p: string, v: unknown): void {
  const m = w.object(p, v);
  if (!m) return;
  const path = w.object(`${p}.path`, m.path, true);
  if (path) {
    const type = w.oneOf(`${p}.path.type`, path.type, PATH_MATCH_TYPES);
    if (type === "RegularExpression") w.regex(`${p}.path.value`, path.value);
    else w.string(`${p}.path.value`, path.value, { max: 4096 });
  }
  for (const f of ["headers", "queryParams"] as const) {
    w.array(`${p}.${f}`, m[f], true)?.forEach((h, i) => {
      const hp = `${p}.${f}[${i}]`;
      const match = w.object(hp, h);
      if (!match) return;
      w.string(`${hp}.name`, match.name, { max: 256 });
      const type = w.oneOf(`${hp}.type`, match.type, MATCH_TYPES);
      if (type === "RegularExpression") w.regex(`${hp}.value`, match.value);
      else if (typeof match.value !== "string") w.report(`${hp}.value`, "must be a string");
    });
  }
  if (m.method !== undefined) w.string(`${p}.method`, m.method, { max: 32 });
}

function checkCluster(w: SnapshotWalk, p: string, name: string, v: unknown): void {
  const c = w.object(p, v);
  if (!c) return;
  if (c.name !== name) w.report(`${p}.name`, `must be the cluster's key ${quoted(name)}`);
  w.string(`${p}.service`, c.service, { max: 253 });
  w.string(`${p}.namespace`, c.namespace, { max: 253 });
  w.array(`${p}.endpoints`, c.endpoints)?.forEach((e, i) => {
    const ep = w.object(`${p}.endpoints[${i}]`, e);
    if (!ep) return;
    w.ip(`${p}.endpoints[${i}].address`, ep.address);
    w.port(`${p}.endpoints[${i}].port`, ep.port);
    w.string(`${p}.endpoints[${i}].workload`, ep.workload, { max: 253 });
    w.stringMap(`${p}.endpoints[${i}].labels`, ep.labels);
    w.string(`${p}.endpoints[${i}].identity`, ep.identity, { optional: true });
    w.string(`${p}.endpoints[${i}].zone`, ep.zone, { optional: true });
  });
  const policy = w.object(`${p}.policy`, c.policy, true);
  const lb = policy && w.object(`${p}.policy.loadBalancer`, policy.loadBalancer, true);
  if (lb) checkLoadBalancer(w, `${p}.policy.loadBalancer`, lb);
  const budget = policy && w.object(`${p}.policy.retryBudget`, policy.retryBudget, true);
  if (budget) {
    w.percent(`${p}.policy.retryBudget.percent`, budget.percent);
    w.number(`${p}.policy.retryBudget.minPerSecond`, budget.minPerSecond, {
      min: 0,
      max: 1e9,
      fraction: true,
    });
  }
  if (policy?.slowStartMs !== undefined) w.millis(`${p}.policy.slowStartMs`, policy.slowStartMs);
}

function checkLoadBalancer(w: SnapshotWalk, p: string, lb: Record<string, unknown>): void {
  const type: LoadBalancerType | undefined = w.oneOf(`${p}.type`, lb.type, LOAD_BALANCER_TYPES);
  if (type === undefined || !HASH_BALANCERS.includes(type)) return;
  const hashOn = w.object(`${p}.hashOn`, lb.hashOn);
  if (hashOn && Object.values(hashOn).filter((x) => x !== undefined).length !== 1)
    w.report(`${p}.hashOn`, "must name exactly one of header, cookie and sourceAddress");
  const size = w.number(`${p}.tableSize`, lb.tableSize, {
    min: 1,
    max: TRAFFIC_POLICY_LIMITS.tableSize,
    optional: true,
  });
  // Maglev steps through its table with per-endpoint strides: a size that is not prime never fills.
  if (type === "Maglev" && size !== undefined && !isPrime(size))
    w.report(`${p}.tableSize`, `must be a prime number for Maglev (got ${size})`);
}

function unknownCluster(name: unknown): string {
  return typeof name === "string"
    ? `names cluster ${quoted(name)}, which the snapshot does not have`
    : "must name a cluster";
}
