// Host → service resolution for the outbound listener, rebuilt on each config change so a request
// costs one Map lookup (two when the Host is not lower-case). A service answers to its snapshot
// `hosts` plus "name.namespace", "name.namespace.svc" and "name.namespace.svc.cluster.local"; the
// bare "name" resolves in the proxy's own namespace first, then "default", then wherever it is unique.
// Each name is accepted without a port, with :80 (the implicit port of http://name/), and with each
// of the service's declared ports; a service that declares no port (0) accepts any port.

import type { OutboundService } from "../../model/snapshot.ts";

export class HostTable<T> {
  /** Exact keys: "name", "name:80", "name:<port>" for every name of every service. */
  readonly #exact = new Map<string, T>();
  /** Names of services without a declared port: matched after stripping any port. */
  readonly #anyPort = new Map<string, T>();
  /** Every name (no port) → its declared port, to explain misses. */
  readonly #names = new Map<string, number>();

  get(host: string): T | undefined {
    const hit = this.#exact.get(host);
    if (hit !== undefined) return hit;
    return this.#slow(host);
  }

  #slow(host: string): T | undefined {
    let h = host.toLowerCase();
    const hit = this.#exact.get(h);
    if (hit !== undefined) return hit;
    const colon = h.lastIndexOf(":");
    let port = "";
    if (colon > 0 && h[0] !== "[") {
      port = h.slice(colon);
      h = h.slice(0, colon);
    }
    if (h.endsWith(".")) {
      h = h.slice(0, -1);
      const again = this.#exact.get(h + port);
      if (again !== undefined) return again;
    }
    return this.#anyPort.get(h);
  }

  /** A human reason for a miss (for the no_route body); not on the fast path. */
  explainMiss(host: string): string {
    const lower = host.toLowerCase();
    const colon = lower.lastIndexOf(":");
    const name = colon > 0 && lower[0] !== "[" ? lower.slice(0, colon) : lower;
    const declared = this.#names.get(name.replace(/\.$/, ""));
    if (declared !== undefined) {
      return `${JSON.stringify(host)} is a mesh service but not on that port (it declares port ${declared})`;
    }
    return `${JSON.stringify(host)} is not a mesh service this proxy can reach`;
  }

  get size(): number {
    return this.#exact.size + this.#anyPort.size;
  }

  /** Builds the table; `ownNamespace` decides which service a bare name means. */
  static build<T>(
    services: readonly { service: OutboundService; value: T }[],
    ownNamespace: string,
  ): HostTable<T> {
    const table = new HostTable<T>();
    const shortNames = new Map<string, { namespace: string; service: OutboundService; value: T }[]>();
    for (const entry of services) {
      const { service: s, value } = entry;
      const fq = `${s.name}.${s.namespace}`.toLowerCase();
      const names = new Set<string>([fq, `${fq}.svc`, `${fq}.svc.cluster.local`]);
      for (const h of s.hosts) {
        const lower = h.toLowerCase().replace(/\.$/, "");
        if (lower.includes(".")) names.add(lower);
        else addShort(shortNames, lower, s, value);
      }
      addShort(shortNames, s.name.toLowerCase(), s, value);
      for (const n of names) table.#add(n, s, value);
    }
    for (const [name, candidates] of shortNames) {
      const pick =
        candidates.find((c) => c.namespace === ownNamespace) ??
        candidates.find((c) => c.namespace === "default") ??
        (candidates.length === 1 ? candidates[0] : undefined);
      if (pick) table.#add(name, pick.service, pick.value);
    }
    return table;
  }

  #add(name: string, s: OutboundService, value: T): void {
    const port = s.port;
    this.#names.set(name, port);
    if (port > 0) {
      this.#exact.set(name, value);
      this.#exact.set(`${name}:80`, value);
      this.#exact.set(`${name}:${port}`, value);
      for (const p of s.ports ?? []) this.#exact.set(`${name}:${p.port}`, value);
    } else {
      this.#exact.set(name, value);
      this.#anyPort.set(name, value);
    }
  }
}

function addShort<T>(
  m: Map<string, { namespace: string; service: OutboundService; value: T }[]>,
  name: string,
  service: OutboundService,
  value: T,
): void {
  const list = m.get(name) ?? [];
  if (!list.some((c) => c.service === service)) list.push({ namespace: service.namespace, service, value });
  m.set(name, list);
}
