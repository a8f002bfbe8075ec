// What a proxy checks before it runs a snapshot: the shape it relies on and that every route's
// backends exist. A snapshot that fails is NACKed and the proxy keeps the one it has.

import type { ProxySnapshot } from "../../model/snapshot.ts";

export function checkSnapshot(s: ProxySnapshot): string | undefined {
  if (!s || typeof s !== "object") return "snapshot is not an object";
  if (typeof s.version !== "string" || !s.version) return "snapshot.version missing";
  if (!s.proxy || !s.mesh || !s.inbound || !s.outbound || !s.clusters) return "snapshot is missing a section";
  if (!Number.isInteger(s.inbound.appPort)) return "snapshot.inbound.appPort is not a port";
  const ports = s.inbound.ports ?? [];
  if (!Array.isArray(ports)) return "snapshot.inbound.ports is not a list";
  for (const [i, p] of ports.entries())
    if (!p || !Number.isInteger(p.port) || !Number.isInteger(p.appPort) || typeof p.protocol !== "string")
      return `snapshot.inbound.ports[${i}] needs port, appPort and protocol`;
  for (const [key, svc] of Object.entries(s.outbound)) {
    if (!Array.isArray(svc.hosts) || !Array.isArray(svc.routes))
      return `outbound.${key}: hosts/routes missing`;
    for (const r of svc.routes) {
      for (const b of r.backends)
        if (!s.clusters[b.cluster]) return `outbound.${key} route ${r.name}: unknown cluster ${b.cluster}`;
      for (const m of r.matches) {
        for (const re of [
          m.path?.type === "RegularExpression" ? m.path.value : undefined,
          ...(m.headers ?? []).filter((h) => h.type === "RegularExpression").map((h) => h.value),
        ]) {
          if (re === undefined) continue;
          try {
            new RegExp(re);
          } catch {
            return `outbound.${key} route ${r.name}: bad regular expression ${JSON.stringify(re)}`;
          }
        }
      }
    }
  }
  return undefined;
}
