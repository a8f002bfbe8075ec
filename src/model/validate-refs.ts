// References from one resource to a Service: HTTPRoute parents and backends, RequestMirror backends,
// TrafficPolicy targets. Shared so every reference spells group and kind the same way.

import type { Checker, StringRule } from "./checker.ts";
import { compact } from "./checker.ts";
import type { FieldPath } from "./field-path.ts";
import { dnsLabel } from "./names.ts";
import type { BackendRef } from "./resources.ts";

/** Services live in the Kubernetes core group, spelled "" (or "core" by some tools). */
export const coreGroup: StringRule = (s) =>
  s === "" || s === "core" ? undefined : 'must be "" (the core group, where Service lives)';
export const serviceKind: StringRule = (s) =>
  s === "Service" ? undefined : 'must be "Service": weft routes to Services, not to other kinds';

/** Gateway API BackendObjectReference: a backend without a weight, as RequestMirror names it. */
export const BACKEND_OBJECT_REF_FIELDS = ["group", "kind", "name", "namespace", "port"] as const;

export function validateBackendObjectRef(
  c: Checker,
  path: FieldPath,
  value: unknown,
): Omit<BackendRef, "weight"> | undefined {
  const raw = c.mapping(path, value, BACKEND_OBJECT_REF_FIELDS, { required: true });
  return raw && checkBackendObjectFields(c, path, raw);
}

/**
 * The fields every backend reference has (group, kind, name, namespace, port), from a mapping the
 * caller already checked for unknown fields; undefined when the name is missing or invalid.
 */
export function checkBackendObjectFields(
  c: Checker,
  path: FieldPath,
  raw: Record<string, unknown>,
): Omit<BackendRef, "weight"> | undefined {
  c.string([...path, "group"], raw.group, { rule: coreGroup });
  c.string([...path, "kind"], raw.kind, { rule: serviceKind });
  const name = c.string([...path, "name"], raw.name, { required: true, rule: dnsLabel });
  const namespace = c.string([...path, "namespace"], raw.namespace, { rule: dnsLabel });
  const port = c.port([...path, "port"], raw.port);
  if (name === undefined) return undefined;
  return compact({ group: "", kind: "Service", name, namespace, port });
}
