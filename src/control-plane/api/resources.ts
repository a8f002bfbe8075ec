// Apply / get / delete of resources. An apply is validated as a whole and written in one store
// transaction: either every document lands or none does.

import { validateManifestFiles } from "../../model/validate.ts";
import { KINDS, normalizeKind, resourceKey, type AnyResource, type Kind } from "../../model/resources.ts";
import type { Op, Store } from "../../store/store.ts";
import { decodeResource } from "../mesh-state.ts";
import { ApiError } from "./http.ts";

export interface ApplyResult {
  kind: Kind;
  namespace: string;
  name: string;
  action: "created" | "configured" | "unchanged";
}

const MAX_CONFLICT_RETRIES = 5;

export interface ManifestFile {
  name: string;
  content: string;
}

export async function applyManifests(
  store: Store,
  files: ManifestFile[],
): Promise<{ results: ApplyResult[]; revision: number }> {
  const { resources, violations } = validateManifestFiles(files);
  const names = files.map((f) => f.name).join(", ");
  if (violations.length > 0) {
    throw new ApiError(422, "invalid", `${violations.length} violation(s) in ${names}; nothing was applied`, {
      violations,
    });
  }
  if (resources.length === 0) throw new ApiError(400, "empty", `${names}: no resources found`);
  for (let attempt = 0; ; attempt++) {
    const ops: Op[] = [];
    const compares = [];
    const results: ApplyResult[] = [];
    for (const r of resources) {
      const key = resourceKey(r.kind, r.metadata.namespace, r.metadata.name);
      const existing = await store.get(key);
      compares.push({
        key,
        target: "modRevision" as const,
        op: "=" as const,
        value: existing?.modRevision ?? 0,
      });
      const prev = existing && decodeResource(existing.value, existing.modRevision);
      const next = stamp(r, prev);
      const value = JSON.stringify(next);
      const action = !existing ? "created" : existing.value === value ? "unchanged" : "configured";
      // A proxy-registered Workload keeps its lease so it still goes away with its proxy.
      if (action !== "unchanged") ops.push({ type: "put", key, value, lease: existing?.lease || undefined });
      results.push({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name, action });
    }
    if (ops.length === 0) return { results, revision: store.revision() };
    const res = await store.txn({ compares, success: ops });
    if (res.succeeded) return { results, revision: res.revision };
    if (attempt >= MAX_CONFLICT_RETRIES)
      throw new ApiError(409, "conflict", "resources changed concurrently; try again");
  }
}

/**
 * The stored form: no resourceVersion (the store's modRevision is the truth); creation time kept;
 * status kept. Status is written only by the control plane (a Workload's health, from its sidecar):
 * validation rejects it in applied files, and re-applying a resource must not clear it either, or
 * an unhealthy workload would get traffic again until its next health report.
 */
function stamp(r: AnyResource, prev: AnyResource | undefined): AnyResource {
  const metadata = { ...r.metadata };
  delete metadata.resourceVersion;
  metadata.creationTimestamp = prev?.metadata.creationTimestamp ?? new Date().toISOString();
  const next = { ...r, metadata } as AnyResource;
  if (prev?.status !== undefined) next.status = prev.status;
  else delete next.status;
  return next;
}

export function parseKind(s: string): Kind {
  const kind = normalizeKind(s);
  if (!kind) throw new ApiError(404, "unknown_kind", `unknown kind "${s}"; known kinds: ${KINDS.join(", ")}`);
  return kind;
}

export async function deleteResource(
  store: Store,
  kind: Kind,
  namespace: string,
  name: string,
): Promise<number> {
  const res = await store.delete(resourceKey(kind, namespace, name));
  if (res.deleted === 0) throw new ApiError(404, "not_found", `${kind} ${namespace}/${name} not found`);
  return res.revision;
}
