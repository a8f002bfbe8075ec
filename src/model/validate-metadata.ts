// metadata: the part of the envelope every kind shares.

import type { Checker } from "./checker.ts";
import { compact } from "./checker.ts";
import { dnsLabel, dnsSubdomain, labelKey, labelValue } from "./names.ts";
import { DEFAULT_NAMESPACE } from "./resources.ts";
import type { Kind, Metadata } from "./resources.ts";

export const METADATA_FIELDS = [
  "name",
  "namespace",
  "labels",
  "annotations",
  // Written by the store; accepted so that `weft get -o yaml | weft apply -f -` round-trips.
  "resourceVersion",
  "creationTimestamp",
] as const;

/**
 * Checks metadata and returns it with the namespace defaulted. Names are DNS-1123 labels, except
 * route names (HTTPRoute, GRPCRoute), which the Gateway API allows to be subdomains (`reviews.canary`).
 * `kind` is undefined when the document's kind is unknown: the generic (label) rule applies then.
 */
export function validateMetadata(c: Checker, value: unknown, kind: Kind | undefined): Metadata | undefined {
  const path = ["metadata"];
  const meta = c.mapping(path, value, METADATA_FIELDS, { required: true });
  if (!meta) return undefined;
  // Gateway API kinds take Kubernetes object names (DNS subdomains); weft's own kinds, DNS labels.
  const nameRule =
    kind === "HTTPRoute" || kind === "GRPCRoute" || kind === "ReferenceGrant" ? dnsSubdomain : dnsLabel;
  const name = c.string([...path, "name"], meta.name, { required: true, rule: nameRule });
  const namespace = c.string([...path, "namespace"], meta.namespace, { rule: dnsLabel }) ?? DEFAULT_NAMESPACE;
  const labels = c.stringMap([...path, "labels"], meta.labels, { key: labelKey, value: labelValue });
  const annotations = c.stringMap([...path, "annotations"], meta.annotations, { key: labelKey });
  const resourceVersion = c.string([...path, "resourceVersion"], meta.resourceVersion);
  const creationTimestamp = c.string([...path, "creationTimestamp"], meta.creationTimestamp);
  if (name === undefined) return undefined;
  return compact({ name, namespace, labels, annotations, resourceVersion, creationTimestamp });
}
