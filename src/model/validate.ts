// Validation entry points: a parsed document → a clean, defaulted resource, or every violation in it.
//
// validateResource checks the envelope (apiVersion, kind, metadata) and hands spec to the kind's own
// validator (validate-<kind>.ts). validateManifests runs parse + validate over a whole file and adds the
// checks that need more than one document (duplicates). An apply must store nothing unless the
// returned violations are empty.

import { Checker } from "./checker.ts";
import type { ParsedResource } from "./parse.ts";
import { parseManifests } from "./parse.ts";
import { API_VERSIONS, KINDS } from "./resources.ts";
import type { AnyResource, Kind, Metadata } from "./resources.ts";
import { didYouMean } from "./suggest.ts";
import { validateFaultInjectionSpec } from "./validate-faultinjection.ts";
import { validateGRPCRouteSpec } from "./validate-grpcroute.ts";
import { validateHTTPRouteSpec } from "./validate-httproute.ts";
import { validateMeshSpec } from "./validate-mesh.ts";
import { validateMetadata } from "./validate-metadata.ts";
import { validateReferenceGrantSpec } from "./validate-referencegrant.ts";
import { validateServiceSpec } from "./validate-service.ts";
import { validateTrafficPolicySpec } from "./validate-trafficpolicy.ts";
import { validateWorkloadSpec } from "./validate-workload.ts";
import { compareViolations } from "./violation.ts";
import type { Violation } from "./violation.ts";

export const ENVELOPE_FIELDS = ["apiVersion", "kind", "metadata", "spec"] as const;

/** Kinds product.md plans but weft does not implement yet: told apart from typos. */
const PLANNED_KINDS = ["Gateway", "AuthorizationPolicy", "RequestAuthentication", "ExternalService"];

type SpecValidator = (c: Checker, spec: unknown, meta: Metadata | undefined) => object | undefined;

const SPEC_VALIDATORS: Record<Kind, SpecValidator> = {
  Mesh: validateMeshSpec,
  Service: validateServiceSpec,
  Workload: validateWorkloadSpec,
  HTTPRoute: validateHTTPRouteSpec,
  GRPCRoute: validateGRPCRouteSpec,
  TrafficPolicy: validateTrafficPolicySpec,
  FaultInjection: validateFaultInjectionSpec,
  ReferenceGrant: validateReferenceGrantSpec,
};

export interface ValidationResult {
  /** Present only when there are no violations: the resource with defaults filled and only known fields. */
  resource?: AnyResource;
  violations: Violation[];
}

export function validateResource(parsed: ParsedResource): ValidationResult {
  const c = new Checker(parsed);
  const raw = parsed.resource;
  // Name the resource in every violation, even ones found before its own fields are checked.
  if (typeof raw.kind === "string") c.kind = raw.kind;
  const rawMeta = raw.metadata as { name?: unknown } | null | undefined;
  if (typeof rawMeta === "object" && rawMeta !== null && typeof rawMeta.name === "string")
    c.name = rawMeta.name;

  // `status` is weft's to write (a Workload's health, from its sidecar): accepting it from an apply
  // would let a stale `weft get -o yaml` copy overwrite what the control plane observed. It gets its
  // own message rather than "unknown field", because the field is real, just not the user's.
  const { status, ...envelope } = raw;
  c.mapping([], envelope, ENVELOPE_FIELDS);
  if (status !== undefined)
    c.report(
      ["status"],
      'field "status" cannot be applied: status is written by weft; remove it from the file',
      {
        key: true,
      },
    );
  const kind = checkKind(c, raw.kind);
  const apiVersion = checkApiVersion(c, raw.apiVersion, kind);
  const metadata = validateMetadata(c, raw.metadata, kind);
  const spec = kind ? SPEC_VALIDATORS[kind](c, raw.spec, metadata) : undefined;

  const violations = c.violations.sort(compareViolations);
  if (violations.length || !kind || !apiVersion || !metadata || !spec) return { violations };
  return { resource: { apiVersion, kind, metadata, spec } as AnyResource, violations };
}

function checkKind(c: Checker, value: unknown): Kind | undefined {
  const known = KINDS.join(", ");
  if (value == null) {
    c.report(["kind"], `is required: one of ${known}`);
    return undefined;
  }
  const kind = c.string(["kind"], value);
  if (kind === undefined) return undefined;
  if ((KINDS as readonly string[]).includes(kind)) return kind as Kind;
  if (PLANNED_KINDS.includes(kind)) {
    c.report(["kind"], `kind ${JSON.stringify(kind)} is not supported by weft yet (supported: ${known})`);
  } else {
    c.report(
      ["kind"],
      `unknown kind ${JSON.stringify(kind)}${didYouMean(kind, KINDS)} (known kinds: ${known})`,
    );
  }
  return undefined;
}

function checkApiVersion(c: Checker, value: unknown, kind: Kind | undefined): string | undefined {
  const expected = kind ? API_VERSIONS[kind] : undefined;
  const want = expected?.map((v) => JSON.stringify(v)).join(" or ");
  const apiVersion = c.string(["apiVersion"], value);
  if (value == null) {
    c.report(["apiVersion"], want ? `is required: use ${want} for kind ${kind}` : "is required");
    return undefined;
  }
  if (apiVersion === undefined || !expected) return apiVersion;
  if (expected.includes(apiVersion)) return apiVersion;
  c.report(["apiVersion"], `must be ${want} for kind ${kind} (got ${JSON.stringify(apiVersion)})`);
  return undefined;
}

export interface ManifestsResult {
  /** Every resource that passed validation (all of them when violations is empty). */
  resources: AnyResource[];
  /** Syntax errors, per-resource violations and duplicates, in file order. */
  violations: Violation[];
}

/** Parse and validate one file's text, including duplicates across its documents. */
export function validateManifests(text: string, file: string): ManifestsResult {
  return validateManifestFiles([{ name: file, content: text }]);
}

/** Parse and validate the files of one apply, including duplicates across all of them. */
export function validateManifestFiles(files: readonly { name: string; content: string }[]): ManifestsResult {
  const violations: Violation[] = [];
  const valid: ValidResource[] = [];
  for (const f of files) {
    const { resources: parsed, errors } = parseManifests(f.content, f.name);
    violations.push(...errors);
    for (const p of parsed) {
      const r = validateResource(p);
      violations.push(...r.violations);
      if (r.resource) valid.push({ resource: r.resource, parsed: p });
    }
  }
  violations.push(...findDuplicates(valid));
  return { resources: valid.map((v) => v.resource), violations: violations.sort(compareViolations) };
}

export interface ValidResource {
  resource: AnyResource;
  parsed: ParsedResource;
}

/**
 * Resources that appear more than once (same kind, namespace and name) in one apply, which may span
 * several files. Each repeat is reported at its metadata.name, pointing back at the first.
 */
export function findDuplicates(items: readonly ValidResource[]): Violation[] {
  const first = new Map<string, ValidResource>();
  const out: Violation[] = [];
  for (const item of items) {
    const { kind, metadata } = item.resource;
    const key = `${kind}/${metadata.namespace}/${metadata.name}`;
    const prev = first.get(key);
    if (!prev) {
      first.set(key, item);
      continue;
    }
    const at = prev.parsed.pos(["metadata", "name"]);
    const what =
      kind === "Mesh"
        ? "only one Mesh is allowed"
        : `duplicate ${kind} ${metadata.namespace}/${metadata.name}`;
    out.push({
      file: item.parsed.file,
      ...item.parsed.pos(["metadata", "name"]),
      path: "metadata.name",
      message: `${what}; first defined at ${prev.parsed.file}:${at.line}:${at.column}`,
      kind,
      name: metadata.name,
    });
  }
  return out;
}
