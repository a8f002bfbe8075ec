// Syntax rules for the names and strings resources contain (Kubernetes, Gateway API and SPIFFE rules).
// Each rule returns undefined when the string is fine, else a message saying what is expected; the
// checker appends what it got.

import { isIP } from "node:net";
import type { StringRule } from "./checker.ts";

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_ANY_CASE = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const SPIFFE_SEGMENT = /^[A-Za-z0-9._-]+$/;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;

/** DNS-1123 label: names of most resources, namespaces, ports. */
export const dnsLabel: StringRule = (s) => {
  if (s.length > 63) return `must be at most 63 characters (has ${s.length})`;
  if (LABEL.test(s)) return undefined;
  if (LABEL.test(s.toLowerCase())) return "must be lowercase (a DNS-1123 label)";
  return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit";
};

/** Gateway API SectionName (HTTPRoute rule names): a DNS-1123 label's characters, up to 253 of them. */
export const sectionName: StringRule = (s) => {
  if (s.length > 253) return `must be at most 253 characters (has ${s.length})`;
  return LABEL.test(s)
    ? undefined
    : "must be lowercase letters, digits and '-', starting and ending with a letter or digit";
};

/** DNS-1123 subdomain: dot-separated labels, at most 253 characters. HTTPRoute names, trust domains. */
export const dnsSubdomain: StringRule = (s) => {
  if (s.length > 253) return `must be at most 253 characters (has ${s.length})`;
  if (s.split(".").every((l) => LABEL.test(l))) return undefined;
  if (s.split(".").every((l) => LABEL.test(l.toLowerCase())))
    return "must be lowercase (a DNS-1123 subdomain)";
  return "must be a DNS-1123 subdomain: dot-separated lowercase labels of letters, digits and '-'";
};

/** A host name as resolvers accept it: case-insensitive labels, at most 253 characters. */
export const hostname: StringRule = (s) => {
  if (s.length > 253) return `must be at most 253 characters (has ${s.length})`;
  if (s.split(".").every((l) => l.length <= 63 && LABEL_ANY_CASE.test(l))) return undefined;
  return "must be a host name: dot-separated labels of letters, digits and '-'";
};

/** Where a Workload's traffic goes: an IPv4/IPv6 literal or a host name. */
export const ipOrHostname: StringRule = (s) => {
  if (isIP(s)) return undefined;
  if (s.startsWith("[") && s.endsWith("]") && isIP(s.slice(1, -1)) === 6)
    return "must be an IPv6 address without brackets";
  if (s.includes(":"))
    return "must be an IP address or host name, without a port (the port goes in spec.port)";
  return hostname(s) === undefined ? undefined : "must be an IP address or a host name";
};

/** Gateway API Hostname: a DNS subdomain, optionally with a leading `*.` wildcard label; not an IP. */
export const routeHostname: StringRule = (s) => {
  if (isIP(s)) return "must be a host name, not an IP address";
  const bare = s.startsWith("*.") ? s.slice(2) : s;
  return dnsSubdomain(bare) === undefined
    ? undefined
    : "must be a lowercase host name, optionally starting with '*.'";
};

/** Kubernetes label (and annotation) key: `[prefix/]name`, prefix a DNS subdomain, name ≤63. */
export const labelKey: StringRule = (s) => {
  const slash = s.indexOf("/");
  const prefix = slash < 0 ? undefined : s.slice(0, slash);
  const name = slash < 0 ? s : s.slice(slash + 1);
  if (prefix !== undefined && (prefix === "" || dnsSubdomain(prefix) !== undefined)) {
    return "prefix before '/' must be a lowercase DNS subdomain such as weft.dev";
  }
  if (name.length === 0 || name.length > 63) return "name part must be 1 to 63 characters";
  if (!QUALIFIED_NAME.test(name)) {
    return "name part must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
  }
  return undefined;
};

/** Kubernetes label value: empty, or ≤63 letters, digits, '-', '_', '.', alphanumeric at both ends. */
export const labelValue: StringRule = (s) => {
  if (s.length > 63) return `must be at most 63 characters (has ${s.length})`;
  if (s === "" || QUALIFIED_NAME.test(s)) return undefined;
  return "must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
};

/** SPIFFE trust domain, as a DNS name: `weft.local`, `prod.example.com`. */
export const trustDomain: StringRule = (s) => {
  if (s.startsWith("spiffe://")) return "must be the trust domain alone, without spiffe://";
  if (!TRUST_DOMAIN.test(s)) return "must be lowercase letters, digits, '.', '-' and '_'";
  return dnsSubdomain(s.replaceAll("_", "-")) === undefined ? undefined : "must be a valid DNS name";
};

/** SPIFFE ID: `spiffe://<trust domain>/<path>`, no port, user info, query or fragment. */
export const spiffeId: StringRule = (s) => {
  if (!s.startsWith("spiffe://")) return "must be a SPIFFE ID starting with spiffe://";
  const rest = s.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const domain = slash < 0 ? rest : rest.slice(0, slash);
  if (!domain || trustDomain(domain) !== undefined) {
    return "must be a SPIFFE ID: spiffe://<trust domain>/<path> with a lowercase trust domain and no port";
  }
  if (slash < 0 || slash === rest.length - 1)
    return "must have a path after the trust domain, e.g. /ns/default/sa/reviews";
  const segments = rest.slice(slash + 1).split("/");
  if (segments.some((seg) => !SPIFFE_SEGMENT.test(seg) || seg === "." || seg === "..")) {
    return "path segments must be non-empty letters, digits, '.', '-' and '_' (no '.' or '..' segments, query or fragment)";
  }
  return undefined;
};

/** HTTP header name (RFC 9110 token), at most 256 characters as in the Gateway API. */
export const headerName: StringRule = (s) => {
  if (s.length > 256) return `must be at most 256 characters (has ${s.length})`;
  return HEADER_NAME.test(s)
    ? undefined
    : "must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)";
};

/** A regular expression as the proxy will run it (JavaScript syntax). */
export const regularExpression: StringRule = (s) => {
  try {
    new RegExp(s);
    return undefined;
  } catch (err) {
    return `must be a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, "")}`;
  }
};

/** Combines rules: the first problem wins. */
export function allOf(...rules: StringRule[]): StringRule {
  return (s) => {
    for (const rule of rules) {
      const problem = rule(s);
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
}

export function maxLength(n: number): StringRule {
  return (s) => (s.length > n ? `must be at most ${n} characters (has ${s.length})` : undefined);
}
