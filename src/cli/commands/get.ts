import { normalizeKind, KINDS, type AnyResource, type WorkloadStatus } from "../../model/resources.ts";
import type { RouteStatus } from "../../control-plane/compile/route-status.ts";
import { api, connectionFlags, connectionOptions } from "../client.ts";
import { CliError, type Command } from "../command.ts";

export const getCommand: Command = {
  name: "get",
  summary: "list resources of a kind, or show one",
  usage: "weft get KIND [NAME] [-n NS] [-o table|yaml|json]",
  flags: [
    ["KIND", `one of ${KINDS.join(", ")} (any case, plural ok)`],
    ["-n, --namespace NS", "only this namespace (default: all for lists, 'default' for one)"],
    ["-o, --output FORMAT", "table (default), yaml or json"],
    ...connectionFlags,
  ],
  options: {
    namespace: { type: "string", short: "n" },
    output: { type: "string", short: "o" },
    ...connectionOptions,
  },
  allowPositionals: true,
  async run(v, pos) {
    const [kindArg, name] = pos;
    if (!kindArg) throw new CliError("missing KIND", `e.g. weft get services; kinds: ${KINDS.join(", ")}`, 2);
    const kind = normalizeKind(kindArg);
    if (!kind) throw new CliError(`unknown kind "${kindArg}"`, `kinds: ${KINDS.join(", ")}`, 2);
    const format = (v.output as string | undefined) ?? "table";
    if (!["table", "yaml", "json"].includes(format))
      throw new CliError(`-o must be table, yaml or json, got "${format}"`, undefined, 2);
    let items: AnyResource[];
    if (name) {
      items = [
        await api<AnyResource>(
          v,
          "GET",
          `/api/v1/resources/${kind}/${encodeURIComponent((v.namespace as string) ?? "default")}/${encodeURIComponent(name)}`,
        ),
      ];
    } else {
      const q = v.namespace ? `?namespace=${encodeURIComponent(v.namespace as string)}` : "";
      items = (await api<{ items: AnyResource[] }>(v, "GET", `/api/v1/resources/${kind}${q}`)).items;
    }
    if (format === "json") process.stdout.write(JSON.stringify(name ? items[0] : { items }, null, 2) + "\n");
    else if (format === "yaml") {
      // Loaded on demand: the YAML library is ~10 MB that `weft proxy` should not carry.
      const { stringify } = await import("yaml");
      process.stdout.write(items.map((i) => stringify(i)).join("---\n"));
    } else process.stdout.write(table(items));
    return 0;
  },
};

export function table(items: AnyResource[]): string {
  if (items.length === 0) return "No resources found.\n";
  // Workloads get a HEALTH column: what their sidecar's health check last reported ("-" when none
  // has, e.g. a static workload), since an Unhealthy workload receives no traffic; NotServing while
  // its sidecar keeps it out of the endpoints (starting or draining).
  const withHealth = items.every((r) => r.kind === "Workload");
  // Routes get a STATUS column: OK when every parent accepted the route and every reference
  // resolves, else the reasons of the conditions that are False (-o yaml has the messages).
  const withStatus = items.every((r) => r.kind === "HTTPRoute" || r.kind === "GRPCRoute");
  const rows = items.map((r) => [
    r.metadata.namespace,
    r.metadata.name,
    ...(withHealth ? [health(r)] : []),
    ...(withStatus ? [routeStatus(r)] : []),
    summary(r),
    age(r.metadata.creationTimestamp),
  ]);
  const head = [
    "NAMESPACE",
    "NAME",
    ...(withHealth ? ["HEALTH"] : []),
    ...(withStatus ? ["STATUS"] : []),
    "DETAILS",
    "AGE",
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  return (
    [head, ...rows]
      .map((row) =>
        row
          .map((c, i) => c.padEnd(widths[i]))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

function summary(r: AnyResource): string {
  switch (r.kind) {
    case "Workload":
      return `service=${r.spec.service} ${r.spec.address}:${r.spec.port}${r.spec.identity ? " mtls" : ""} ${Object.entries(
        r.metadata.labels ?? {},
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(",")}`.trim();
    case "Service":
      return (r.spec.ports ?? []).map((p) => `${p.port}/${p.protocol ?? "http"}`).join(",") || "-";
    case "HTTPRoute":
    case "GRPCRoute":
      return `parents=${r.spec.parentRefs.map((p) => p.name).join(",")} rules=${r.spec.rules?.length ?? 0}`;
    case "Mesh":
      return `trustDomain=${r.spec.trustDomain ?? "weft.local"} mtls=${r.spec.mtls?.mode ?? "STRICT"}`;
    case "TrafficPolicy": {
      const s = r.spec;
      const parts = [`target=${s.targetRef.name}`];
      if (s.loadBalancer) parts.push(`lb=${s.loadBalancer.type ?? "LeastRequest"}`);
      if (s.rateLimit) parts.push(`rateLimit=${s.rateLimit.requestsPerSecond}/s`);
      if (s.healthCheck)
        parts.push(`healthCheck=${s.healthCheck.http ? `http:${s.healthCheck.http.path ?? "/"}` : "tcp"}`);
      // The remaining sections by name only: the table says what is shaped, -o yaml says how.
      const others = (
        ["locality", "connectionPool", "outlierDetection", "slowStart", "retryBudget"] as const
      ).filter((k) => s[k] !== undefined);
      if (others.length) parts.push(others.join(","));
      return parts.join(" ");
    }
    case "FaultInjection": {
      const { delay, abort } = r.spec;
      const parts: string[] = [];
      if (delay) parts.push(`delay=${delay.fixedDelay}@${delay.percent ?? 100}%`);
      if (abort) parts.push(`abort=${abort.httpStatus}@${abort.percent ?? 100}%`);
      return parts.join(" ") || "-";
    }
    case "ReferenceGrant":
      return `from=${r.spec.from.map((f) => `${f.kind}@${f.namespace}`).join(",")} to=${r.spec.to
        .map((t) => `${t.kind}/${t.name ?? "*"}`)
        .join(",")}`;
  }
}

/** The health check's verdict, and "NotServing" while the sidecar keeps the instance out (starting, draining). */
function health(r: AnyResource): string {
  const s = r.status as Partial<WorkloadStatus> | undefined;
  if (s?.serving === false) return s.health ? `${s.health},NotServing` : "NotServing";
  return s?.health ?? "-";
}

/** "OK", or the reasons of a route's False conditions ("BackendNotFound,NoMatchingParent"); "-" without a status. */
function routeStatus(r: AnyResource): string {
  const parents = (r.status as Partial<RouteStatus> | undefined)?.parents;
  if (!Array.isArray(parents)) return "-";
  const reasons = new Set<string>();
  for (const p of parents)
    for (const c of p.conditions ?? []) if (c.status === "False") reasons.add(c.reason);
  return reasons.size === 0 ? "OK" : [...reasons].join(",");
}

function age(ts?: string): string {
  if (!ts) return "-";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(ts)) / 1000));
  return s < 120
    ? `${s}s`
    : s < 7200
      ? `${Math.round(s / 60)}m`
      : s < 172800
        ? `${Math.round(s / 3600)}h`
        : `${Math.round(s / 86400)}d`;
}
