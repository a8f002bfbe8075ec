// HTTPRoute rule filters (Gateway API HTTPRouteFilter): header modifiers, redirects, URL rewrites,
// request mirrors, and weft's one extension filter, FaultInjection (through ExtensionRef).
//
// The Gateway API states most of these rules as CEL on its CRDs; weft checks the same rules here so a
// route weft accepts is one Kubernetes accepts too, and reports them with positions instead of CEL text.

import type { Checker, StringRule } from "./checker.ts";
import { compact } from "./checker.ts";
import { describeValue } from "./describe.ts";
import type { FieldPath } from "./field-path.ts";
import { formatPath } from "./field-path.ts";
import { allOf, dnsLabel, headerName, maxLength, routeHostname } from "./names.ts";
import { WEFT_API_VERSION } from "./resources.ts";
import type {
  HTTPHeader,
  HTTPHeaderFilter,
  HTTPPathModifier,
  HTTPRouteFilter,
  HTTPRouteFilterType,
  HTTPRouteMatch,
} from "./resources.ts";
import { DEFAULT_FRACTION_DENOMINATOR, DEFAULT_REDIRECT_STATUS_CODE } from "./traffic-defaults.ts";
import { validateBackendObjectRef } from "./validate-refs.ts";
import { reportDuplicates } from "./validate-values.ts";

/** The field that holds each filter type's settings: `type` must name the one field that is set. */
const FIELD_OF_TYPE = {
  RequestHeaderModifier: "requestHeaderModifier",
  ResponseHeaderModifier: "responseHeaderModifier",
  RequestRedirect: "requestRedirect",
  URLRewrite: "urlRewrite",
  RequestMirror: "requestMirror",
  ExtensionRef: "extensionRef",
} as const satisfies Record<HTTPRouteFilterType, keyof HTTPRouteFilter>;

export const FILTER_TYPES = Object.keys(FIELD_OF_TYPE) as HTTPRouteFilterType[];
export const FILTER_FIELDS = ["type", ...Object.values(FIELD_OF_TYPE)] as const;
/** Experimental Gateway API filters weft does not implement yet: told apart from typos. */
const UNSUPPORTED_FILTER_TYPES = ["CORS", "ExternalAuth"];
const UNSUPPORTED_FILTER_FIELDS = ["cors", "externalAuth"];

export const HEADER_FILTER_FIELDS = ["set", "add", "remove"] as const;
export const HEADER_FIELDS = ["name", "value"] as const;
export const PATH_MODIFIER_FIELDS = ["type", "replaceFullPath", "replacePrefixMatch"] as const;
export const PATH_MODIFIER_TYPES = ["ReplaceFullPath", "ReplacePrefixMatch"] as const;
export const REDIRECT_FIELDS = ["scheme", "hostname", "path", "port", "statusCode"] as const;
export const REWRITE_FIELDS = ["hostname", "path"] as const;
export const MIRROR_FIELDS = ["backendRef", "percent", "fraction"] as const;
export const FRACTION_FIELDS = ["numerator", "denominator"] as const;
export const EXTENSION_REF_FIELDS = ["group", "kind", "name"] as const;

export const REDIRECT_SCHEMES = ["http", "https"] as const;
export const REDIRECT_STATUS_CODES = [301, 302, 303, 307, 308] as const;
/** The group and kind an ExtensionRef must name: weft's only extension filter. */
export const FAULT_EXTENSION = { group: "weft.dev", kind: "FaultInjection" } as const;

/** The Gateway API's list limits for filters. */
export const FILTER_LIMITS = { filtersPerRule: 16, headersPerModifier: 16 } as const;

/** What a rule's filters are checked against: its matches (by index, undefined where invalid) and backends. */
export interface RuleContext {
  path: FieldPath;
  matches: (HTTPRouteMatch | undefined)[] | undefined;
  hasBackendRefs: boolean;
  /** The route kind, when it allows fewer filter types than HTTPRoute (GRPCRoute), and those types. */
  only?: { kind: string; types: readonly HTTPRouteFilterType[] };
}

/**
 * The filters of one rule. Each filter is checked on its own, then the rule-wide rules: one filter of
 * each type except RequestMirror, no RequestRedirect beside URLRewrite or backendRefs.
 */
export function validateFilters(
  c: Checker,
  rule: RuleContext,
  value: unknown,
): HTTPRouteFilter[] | undefined {
  const path = [...rule.path, "filters"];
  const list = c.list(path, value, { max: FILTER_LIMITS.filtersPerRule });
  if (!list) return undefined;
  const out: HTTPRouteFilter[] = [];
  const firstOfType = new Map<HTTPRouteFilterType, number>();
  list.forEach((item, i) => {
    const { type, filter } = validateFilter(c, [...path, i], item, rule);
    if (filter) out.push(filter);
    if (!type) return;
    const first = firstOfType.get(type);
    if (first === undefined) firstOfType.set(type, i);
    // Mirrors may repeat (copy traffic to several places); any other type twice would leave it
    // ambiguous which one applies, so the Gateway API forbids it.
    else if (type !== "RequestMirror")
      c.report(
        [...path, i, "type"],
        `only one ${type} filter is allowed per rule (also ${formatPath([...path, first])})`,
      );
  });

  const redirect = firstOfType.get("RequestRedirect");
  const rewrite = firstOfType.get("URLRewrite");
  if (redirect !== undefined && rewrite !== undefined) {
    const [later, earlier] = redirect > rewrite ? [redirect, rewrite] : [rewrite, redirect];
    c.report(
      [...path, later, "type"],
      `RequestRedirect and URLRewrite cannot be used in the same rule: a redirect answers the request, so nothing is forwarded to rewrite (the other is ${formatPath([...path, earlier])})`,
    );
  }
  if (redirect !== undefined && rule.hasBackendRefs) {
    c.report(
      [...path, redirect, "type"],
      `a RequestRedirect filter answers the request itself, so the rule must not have backendRefs (remove one or the other)`,
    );
  }
  return out;
}

function validateFilter(
  c: Checker,
  path: FieldPath,
  value: unknown,
  rule: RuleContext,
): { type?: HTTPRouteFilterType; filter?: HTTPRouteFilter } {
  const raw = c.mapping(path, value, FILTER_FIELDS, {
    required: true,
    unsupported: UNSUPPORTED_FILTER_FIELDS,
  });
  if (!raw) return {};
  let type: HTTPRouteFilterType | undefined;
  const only = rule.only;
  if (
    only &&
    typeof raw.type === "string" &&
    FILTER_TYPES.includes(raw.type as HTTPRouteFilterType) &&
    !only.types.includes(raw.type as HTTPRouteFilterType)
  ) {
    c.report(
      [...path, "type"],
      `filter type ${JSON.stringify(raw.type)} is not available on ${only.kind} (${only.kind} filters: ${only.types.join(", ")})`,
    );
  } else if (typeof raw.type === "string" && UNSUPPORTED_FILTER_TYPES.includes(raw.type)) {
    c.report(
      [...path, "type"],
      `filter type ${JSON.stringify(raw.type)} is not supported by weft yet (supported: ${FILTER_TYPES.join(", ")})`,
    );
  } else {
    type = c.oneOf([...path, "type"], raw.type, only?.types ?? FILTER_TYPES, { required: true });
  }
  if (!type) return {};

  // `type` must name the one settings field that is present: the Gateway API rejects a filter whose
  // type says RequestHeaderModifier but which carries a requestRedirect.
  const field = FIELD_OF_TYPE[type];
  for (const [otherType, otherField] of Object.entries(FIELD_OF_TYPE)) {
    if (otherField === field || raw[otherField] == null) continue;
    c.report(
      [...path, otherField],
      `must not be set when type is ${JSON.stringify(type)} (${otherField} goes with type ${JSON.stringify(otherType)})`,
      { key: true },
    );
  }
  const settingsPath = [...path, field];
  const settings = raw[field];
  if (settings == null) {
    c.report(settingsPath, `is required when type is ${JSON.stringify(type)}`);
    return { type };
  }

  const filter = ((): HTTPRouteFilter | undefined => {
    switch (type) {
      case "RequestHeaderModifier":
      case "ResponseHeaderModifier": {
        const m = headerModifier(c, settingsPath, settings);
        return m && { type, [field]: m };
      }
      case "RequestRedirect": {
        const r = requestRedirect(c, settingsPath, settings, rule);
        return r && { type, requestRedirect: r };
      }
      case "URLRewrite": {
        const r = urlRewrite(c, settingsPath, settings, rule);
        return r && { type, urlRewrite: r };
      }
      case "RequestMirror": {
        const m = requestMirror(c, settingsPath, settings);
        return m && { type, requestMirror: m };
      }
      case "ExtensionRef": {
        const e = extensionRef(c, settingsPath, settings);
        return e && { type, extensionRef: e };
      }
    }
  })();
  return { type, filter };
}

/** Header values go on the wire as they are: CR or LF would split the header, NUL is never valid. */
const headerValue: StringRule = allOf(
  (s) => (s === "" ? "must not be empty" : undefined),
  maxLength(4096),
  (s) => (/[\r\n\0]/.test(s) ? "must not contain CR, LF or NUL characters" : undefined),
);

/**
 * Headers the proxy frames or manages per hop: a filter that changed them could re-frame a message
 * (request smuggling, response splitting) or break the connection, so they are refused.
 */
const PROXY_MANAGED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
]);

const modifiableHeader: StringRule = allOf(headerName, (s) =>
  PROXY_MANAGED_HEADERS.has(s.toLowerCase())
    ? `is managed by the proxy (framing or per hop) and cannot be modified${s.toLowerCase() === "host" ? "; use a URLRewrite filter's hostname" : ""}`
    : undefined,
);

function headerModifier(c: Checker, path: FieldPath, value: unknown): HTTPHeaderFilter | undefined {
  const raw = c.mapping(path, value, HEADER_FILTER_FIELDS, { required: true });
  if (!raw) return undefined;
  // An empty modifier does nothing, which is almost always a mis-indented set/add/remove.
  if (raw.set == null && raw.add == null && raw.remove == null) {
    c.report(path, "must set at least one of set, add, remove");
    return undefined;
  }
  const set = headerList(c, [...path, "set"], raw.set);
  const add = headerList(c, [...path, "add"], raw.add);
  const removeRaw = c.list([...path, "remove"], raw.remove, { max: FILTER_LIMITS.headersPerModifier });
  const remove = removeRaw?.map((h, i) =>
    c.string([...path, "remove", i], h, { required: true, rule: modifiableHeader }),
  );
  if (remove) reportDuplicates(c, [...path, "remove"], remove, (v) => String(v).toLowerCase());
  return compact({ set, add, remove: remove?.filter((h) => h !== undefined) });
}

/** set/add entries: {name, value}, names unique case-insensitively. */
function headerList(c: Checker, path: FieldPath, value: unknown): HTTPHeader[] | undefined {
  const list = c.list(path, value, { max: FILTER_LIMITS.headersPerModifier });
  if (!list) return undefined;
  const out: HTTPHeader[] = [];
  const names: (string | undefined)[] = [];
  list.forEach((item, i) => {
    const raw = c.mapping([...path, i], item, HEADER_FIELDS, { required: true });
    const name = c.string([...path, i, "name"], raw?.name, { required: !!raw, rule: modifiableHeader });
    const v = c.string([...path, i, "value"], raw?.value, { required: !!raw, rule: headerValue });
    names.push(name);
    if (name !== undefined && v !== undefined) out.push({ name, value: v });
  });
  const first = new Map<string, number>();
  names.forEach((name, i) => {
    if (name === undefined) return;
    const prev = first.get(name.toLowerCase());
    if (prev === undefined) first.set(name.toLowerCase(), i);
    else
      c.report(
        [...path, i, "name"],
        `duplicate header ${JSON.stringify(name)} (also ${formatPath([...path, prev])}); header names are case-insensitive`,
      );
  });
  return out;
}

/** Rewritten and redirected paths are absolute; the proxy would otherwise build a request line without one. */
const absolutePath: StringRule = allOf(maxLength(1024), (s) =>
  s.startsWith("/") ? undefined : "must start with '/'",
);

function pathModifier(
  c: Checker,
  path: FieldPath,
  value: unknown,
  rule: RuleContext,
): HTTPPathModifier | undefined {
  const raw = c.mapping(path, value, PATH_MODIFIER_FIELDS, { required: true });
  if (!raw) return undefined;
  const type = c.oneOf([...path, "type"], raw.type, PATH_MODIFIER_TYPES, { required: true });
  if (!type) return undefined;
  const field = type === "ReplaceFullPath" ? "replaceFullPath" : "replacePrefixMatch";
  const other = type === "ReplaceFullPath" ? "replacePrefixMatch" : "replaceFullPath";
  if (raw[other] != null)
    c.report([...path, other], `must not be set when type is ${JSON.stringify(type)}`, { key: true });
  const v = c.string([...path, field], raw[field], { required: true, rule: absolutePath });

  // ReplacePrefixMatch replaces "the prefix that matched": only defined when every match of the rule
  // is a PathPrefix one (a match without a path is PathPrefix "/", the Gateway API default).
  if (type === "ReplacePrefixMatch") {
    const matches = rule.matches ?? [];
    const bad = matches.findIndex((m) => m !== undefined && (m.path?.type ?? "PathPrefix") !== "PathPrefix");
    if (bad >= 0) {
      const matchPath = formatPath([...rule.path, "matches", bad, "path", "type"]);
      c.report(
        [...path, "type"],
        `ReplacePrefixMatch needs every match of the rule to have a PathPrefix path (${matchPath} is ${JSON.stringify(matches[bad]!.path!.type)})`,
      );
      return undefined;
    }
  }
  if (v === undefined) return undefined;
  return type === "ReplaceFullPath" ? { type, replaceFullPath: v } : { type, replacePrefixMatch: v };
}

/** Gateway API PreciseHostname: a host name without a wildcard, and not an IP address. */
const preciseHostname: StringRule = (s) =>
  s.startsWith("*") ? "must be a host name without a wildcard" : routeHostname(s);

type Redirect = NonNullable<HTTPRouteFilter["requestRedirect"]>;

function requestRedirect(
  c: Checker,
  path: FieldPath,
  value: unknown,
  rule: RuleContext,
): Redirect | undefined {
  const raw = c.mapping(path, value, REDIRECT_FIELDS, { required: true });
  if (!raw) return undefined;
  const scheme = c.oneOf([...path, "scheme"], raw.scheme, REDIRECT_SCHEMES);
  const hostname = c.string([...path, "hostname"], raw.hostname, { rule: preciseHostname });
  const p = raw.path == null ? undefined : pathModifier(c, [...path, "path"], raw.path, rule);
  const port = c.port([...path, "port"], raw.port);
  let statusCode: Redirect["statusCode"] = DEFAULT_REDIRECT_STATUS_CODE;
  if (raw.statusCode != null) {
    if ((REDIRECT_STATUS_CODES as readonly unknown[]).includes(raw.statusCode))
      statusCode = raw.statusCode as Redirect["statusCode"];
    else {
      c.report(
        [...path, "statusCode"],
        `must be one of ${REDIRECT_STATUS_CODES.join(", ")} (got ${describeValue(raw.statusCode)})`,
      );
      return undefined;
    }
  }
  if (raw.path != null && p === undefined) return undefined;
  return compact({ scheme, hostname, path: p, port, statusCode });
}

type Rewrite = NonNullable<HTTPRouteFilter["urlRewrite"]>;

function urlRewrite(c: Checker, path: FieldPath, value: unknown, rule: RuleContext): Rewrite | undefined {
  const raw = c.mapping(path, value, REWRITE_FIELDS, { required: true });
  if (!raw) return undefined;
  if (raw.hostname == null && raw.path == null) {
    c.report(path, "must set hostname, path or both");
    return undefined;
  }
  const hostname = c.string([...path, "hostname"], raw.hostname, { rule: preciseHostname });
  const p = raw.path == null ? undefined : pathModifier(c, [...path, "path"], raw.path, rule);
  if ((raw.hostname != null && hostname === undefined) || (raw.path != null && p === undefined))
    return undefined;
  return compact({ hostname, path: p });
}

type MirrorSettings = NonNullable<HTTPRouteFilter["requestMirror"]>;

function requestMirror(c: Checker, path: FieldPath, value: unknown): MirrorSettings | undefined {
  const raw = c.mapping(path, value, MIRROR_FIELDS, { required: true });
  if (!raw) return undefined;
  const backendRef = validateBackendObjectRef(c, [...path, "backendRef"], raw.backendRef);
  if (raw.percent != null && raw.fraction != null) {
    c.report([...path, "fraction"], "set percent or fraction, not both", { key: true });
    return undefined;
  }
  const percent = c.integer([...path, "percent"], raw.percent, { min: 0, max: 100 });
  let fraction: MirrorSettings["fraction"];
  const rawFraction = c.mapping([...path, "fraction"], raw.fraction, FRACTION_FIELDS);
  if (rawFraction) {
    const fp = [...path, "fraction"];
    const numerator = c.integer([...fp, "numerator"], rawFraction.numerator, {
      required: true,
      min: 0,
      max: 2 ** 31 - 1,
    });
    const denominator =
      rawFraction.denominator == null
        ? DEFAULT_FRACTION_DENOMINATOR
        : c.integer([...fp, "denominator"], rawFraction.denominator, { min: 1, max: 2 ** 31 - 1 });
    if (numerator === undefined || denominator === undefined) return undefined;
    if (numerator > denominator) {
      c.report(
        [...fp, "numerator"],
        `must not be greater than the denominator (${denominator}): a mirror cannot copy more than every request`,
      );
      return undefined;
    }
    fraction = { numerator, denominator };
  }
  if (!backendRef || (raw.percent != null && percent === undefined)) return undefined;
  return compact({ backendRef, percent, fraction });
}

type ExtensionRefSettings = NonNullable<HTTPRouteFilter["extensionRef"]>;

function extensionRef(c: Checker, path: FieldPath, value: unknown): ExtensionRefSettings | undefined {
  const raw = c.mapping(path, value, EXTENSION_REF_FIELDS, { required: true });
  if (!raw) return undefined;
  const only = `weft's only extension filter is ${FAULT_EXTENSION.group}/${FAULT_EXTENSION.kind} (apiVersion ${WEFT_API_VERSION})`;
  const group = c.string([...path, "group"], raw.group, {
    required: true,
    rule: (s) => (s === FAULT_EXTENSION.group ? undefined : `must be "${FAULT_EXTENSION.group}": ${only}`),
  });
  const kind = c.string([...path, "kind"], raw.kind, {
    required: true,
    rule: (s) => (s === FAULT_EXTENSION.kind ? undefined : `must be "${FAULT_EXTENSION.kind}": ${only}`),
  });
  const name = c.string([...path, "name"], raw.name, { required: true, rule: dnsLabel });
  if (group === undefined || kind === undefined || name === undefined) return undefined;
  return { group, kind, name };
}
