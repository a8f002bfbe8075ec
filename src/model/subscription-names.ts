// On-demand subscription names: the host names a proxy subscribes to when its app first calls them
// (stream-protocol.ts's subscribe), and how one names a Service. The proxy turns a request's Host into
// one (`subscriptionName`); the control plane checks what it receives (`subscriptionNameProblem`) and
// resolves it (`parseSubscription`) with the rules of the proxy's host table
// (src/proxy/outbound/host-table.ts): "name.ns", "name.ns.svc" and "name.ns.svc.cluster.local" name
// the Service "name.ns"; a bare "name" is looked up by the resolver (own namespace, then "default",
// then wherever it is unique).

import { isIP } from "node:net";

/** At most this many labels: "name.ns.svc.cluster.local" is the longest form that names a Service. */
export const MAX_SUBSCRIPTION_LABELS = 5;
export const MAX_SUBSCRIPTION_NAME_LENGTH = 253;

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Undefined when `s` is a plausible subscription name, else what is wrong with it. */
export function subscriptionNameProblem(s: unknown): string | undefined {
  if (typeof s !== "string") return "must be a string";
  if (s.length === 0 || s.length > MAX_SUBSCRIPTION_NAME_LENGTH)
    return `must be 1 to ${MAX_SUBSCRIPTION_NAME_LENGTH} characters (has ${s.length})`;
  const labels = s.split(".");
  if (labels.length > MAX_SUBSCRIPTION_LABELS)
    return `must have at most ${MAX_SUBSCRIPTION_LABELS} labels (has ${labels.length})`;
  if (!labels.every((l) => LABEL.test(l)))
    return "must be a lower-case host name: dot-separated DNS-1123 labels, without port or trailing dot";
  return undefined;
}

/**
 * The subscription name a request's Host (or CONNECT authority) stands for: port stripped,
 * lower-cased, trailing dot removed; undefined when it could not name a mesh Service (an IP literal,
 * too long, too deep, not a host name) — such a request gets the usual no_route.
 */
export function subscriptionName(host: string): string | undefined {
  if (host.length === 0 || host.length > MAX_SUBSCRIPTION_NAME_LENGTH + 7) return undefined;
  if (host[0] === "[") return undefined; // an IPv6 literal
  let h = host.toLowerCase();
  const colon = h.lastIndexOf(":");
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith(".")) h = h.slice(0, -1);
  if (isIP(h)) return undefined;
  return subscriptionNameProblem(h) === undefined ? h : undefined;
}

/**
 * What a (valid) subscription name names: a Service key "name.ns" for the qualified forms, a bare
 * name for the resolver to place, or nothing (a dotted name of no Service form, e.g. "a.b.c").
 */
export function parseSubscription(s: string): { key: string } | { bare: string } | undefined {
  const labels = s.split(".");
  if (labels.length === 1) return { bare: s };
  const [name, ns, ...rest] = labels;
  const suffix = rest.join(".");
  if (suffix === "" || suffix === "svc" || suffix === "svc.cluster.local") return { key: `${name}.${ns}` };
  return undefined;
}
