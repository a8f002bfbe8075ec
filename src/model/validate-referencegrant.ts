// ReferenceGrant (Gateway API, unchanged): the owner of a namespace lets routes in other namespaces
// send traffic to its Services. A grant lives in the namespace whose Services it opens (`to`), and
// names who may refer to them (`from`: route kind + namespace). Entries of each list combine with OR.
//
// weft reads grants for HTTPRoute and GRPCRoute backendRefs to Services; the other Gateway API kinds a
// grant may name (Gateway, TCPRoute, Secret, ...) are reported as not supported yet rather than stored
// with no effect, so a grant that is accepted is a grant that does something.

import type { Checker, StringRule } from "./checker.ts";
import { compact } from "./checker.ts";
import type { FieldPath } from "./field-path.ts";
import { formatPath } from "./field-path.ts";
import { dnsLabel } from "./names.ts";
import { GATEWAY_API_GROUP } from "./resources.ts";
import type { Metadata, ReferenceGrantSpec } from "./resources.ts";
import { coreGroup } from "./validate-refs.ts";

export const REFERENCE_GRANT_SPEC_FIELDS = ["from", "to"] as const;
export const GRANT_FROM_FIELDS = ["group", "kind", "namespace"] as const;
export const GRANT_TO_FIELDS = ["group", "kind", "name"] as const;
/** Route kinds whose backendRefs a grant can open in weft. */
export const GRANT_FROM_KINDS = ["HTTPRoute", "GRPCRoute"] as const;
/** Gateway API kinds a grant may name that weft does not read (yet). */
const UNSUPPORTED_FROM_KINDS = ["Gateway", "TCPRoute", "TLSRoute", "UDPRoute"];
const UNSUPPORTED_TO_KINDS = ["Secret", "ServiceImport"];
/** The Gateway API's list limits. */
export const GRANT_LIMITS = { from: 16, to: 16 } as const;

export function validateReferenceGrantSpec(
  c: Checker,
  value: unknown,
  _meta: Metadata | undefined,
): ReferenceGrantSpec | undefined {
  const path = ["spec"];
  const spec = c.mapping(path, value, REFERENCE_GRANT_SPEC_FIELDS, { required: true });
  if (!spec) return undefined;
  const fromRaw = c.list([...path, "from"], spec.from, { required: true, min: 1, max: GRANT_LIMITS.from });
  const from = fromRaw?.map((f, i) => validateFrom(c, [...path, "from", i], f));
  const toRaw = c.list([...path, "to"], spec.to, { required: true, min: 1, max: GRANT_LIMITS.to });
  const to = toRaw?.map((t, i) => validateTo(c, [...path, "to", i], t));
  if (from) reportRepeats(c, [...path, "from"], from, (f) => `${f.kind}/${f.namespace}`);
  if (to) reportRepeats(c, [...path, "to"], to, (t) => `${t.kind}/${t.name ?? "*"}`);
  if (!from || !to) return undefined;
  return {
    from: from.filter((f) => f !== undefined),
    to: to.filter((t) => t !== undefined),
  };
}

function validateFrom(
  c: Checker,
  path: FieldPath,
  value: unknown,
): ReferenceGrantSpec["from"][number] | undefined {
  const raw = c.mapping(path, value, GRANT_FROM_FIELDS, { required: true });
  if (!raw) return undefined;
  const group = c.string([...path, "group"], raw.group, {
    required: true,
    rule: (s) =>
      s === GATEWAY_API_GROUP
        ? undefined
        : `must be "${GATEWAY_API_GROUP}": routes are the only kinds whose references weft checks against grants`,
  });
  const kind = c.string([...path, "kind"], raw.kind, { required: true, rule: fromKind });
  const namespace = c.string([...path, "namespace"], raw.namespace, { required: true, rule: dnsLabel });
  if (group === undefined || kind === undefined || namespace === undefined) return undefined;
  return { group, kind, namespace };
}

function validateTo(
  c: Checker,
  path: FieldPath,
  value: unknown,
): ReferenceGrantSpec["to"][number] | undefined {
  const raw = c.mapping(path, value, GRANT_TO_FIELDS, { required: true });
  if (!raw) return undefined;
  // Required by the Gateway API even though "" (the core group) is its only useful value here.
  const group = c.string([...path, "group"], raw.group, { required: true, rule: coreGroup });
  const kind = c.string([...path, "kind"], raw.kind, { required: true, rule: toKind });
  const name = c.string([...path, "name"], raw.name, { rule: dnsLabel });
  if (group === undefined || kind === undefined || (raw.name != null && name === undefined)) return undefined;
  return compact({ group: "", kind, name });
}

const fromKind: StringRule = (s) => {
  if ((GRANT_FROM_KINDS as readonly string[]).includes(s)) return undefined;
  if (UNSUPPORTED_FROM_KINDS.includes(s))
    return `kind ${JSON.stringify(s)} is not supported by weft yet (supported: ${GRANT_FROM_KINDS.join(", ")})`;
  return `must be one of ${GRANT_FROM_KINDS.join(", ")}`;
};

const toKind: StringRule = (s) => {
  if (s === "Service") return undefined;
  if (UNSUPPORTED_TO_KINDS.includes(s))
    return `kind ${JSON.stringify(s)} is not supported by weft yet (supported: Service)`;
  return 'must be "Service": weft routes to Services';
};

/** The same entry twice is harmless but almost always a copy-paste slip where another was meant. */
function reportRepeats<T>(
  c: Checker,
  path: FieldPath,
  items: (T | undefined)[],
  key: (t: T) => string,
): void {
  const first = new Map<string, number>();
  items.forEach((item, i) => {
    if (item === undefined) return;
    const k = key(item);
    const prev = first.get(k);
    if (prev === undefined) first.set(k, i);
    else c.report([...path, i], `duplicate entry (also ${formatPath([...path, prev])})`);
  });
}
