// Mesh: mesh-wide settings. There is one, named "default"; every field has a default, so `spec` may be
// left out entirely.

import type { Checker } from "./checker.ts";
import { trustDomain } from "./names.ts";
import {
  DEFAULT_MTLS_MODE,
  DEFAULT_NAMESPACE,
  DEFAULT_TRUST_DOMAIN,
  MESH_NAME,
  MTLS_MODES,
} from "./resources.ts";
import type { MeshSpec, Metadata } from "./resources.ts";

export const MESH_SPEC_FIELDS = ["trustDomain", "mtls"] as const;

export function validateMeshSpec(
  c: Checker,
  value: unknown,
  meta: Metadata | undefined,
): MeshSpec | undefined {
  if (meta && meta.name !== MESH_NAME) {
    c.report(
      ["metadata", "name"],
      `must be "${MESH_NAME}": a mesh has exactly one Mesh resource (got ${JSON.stringify(meta.name)})`,
    );
  }
  if (meta && meta.namespace !== DEFAULT_NAMESPACE) {
    c.report(
      ["metadata", "namespace"],
      `must be omitted: a Mesh applies to every namespace (got ${JSON.stringify(meta.namespace)})`,
    );
  }

  const path = ["spec"];
  const spec = c.mapping(path, value, MESH_SPEC_FIELDS);
  if (value !== undefined && value !== null && !spec) return undefined;
  const domain = c.string([...path, "trustDomain"], spec?.trustDomain, { rule: trustDomain });
  const mtls = c.mapping([...path, "mtls"], spec?.mtls, ["mode"]);
  const mode = c.oneOf([...path, "mtls", "mode"], mtls?.mode, MTLS_MODES);
  return { trustDomain: domain ?? DEFAULT_TRUST_DOMAIN, mtls: { mode: mode ?? DEFAULT_MTLS_MODE } };
}
