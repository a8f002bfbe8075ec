// Workload: one instance of a service. Proxies register their own when they connect; static Workloads
// describe endpoints that run without a sidecar (a database, a legacy VM).

import type { Checker } from "./checker.ts";
import { compact } from "./checker.ts";
import { allOf, dnsLabel, ipOrHostname, labelValue, spiffeId } from "./names.ts";
import { SERVICE_LABEL } from "./resources.ts";
import type { Metadata, WorkloadSpec } from "./resources.ts";

export const WORKLOAD_SPEC_FIELDS = ["service", "address", "port", "identity", "zone"] as const;

const zone = allOf((s) => (s === "" ? "must not be empty" : undefined), labelValue);

export function validateWorkloadSpec(
  c: Checker,
  value: unknown,
  meta: Metadata | undefined,
): WorkloadSpec | undefined {
  const path = ["spec"];
  const spec = c.mapping(path, value, WORKLOAD_SPEC_FIELDS, { required: true });
  if (!spec) return undefined;
  const service = c.string([...path, "service"], spec.service, { required: true, rule: dnsLabel });
  const address = c.string([...path, "address"], spec.address, { required: true, rule: ipOrHostname });
  const port = c.port([...path, "port"], spec.port, { required: true });
  const identity = c.string([...path, "identity"], spec.identity, { rule: spiffeId });
  const z = c.string([...path, "zone"], spec.zone, { rule: zone });

  // weft gives every workload the label weft.dev/service=<service>; a different value would make the
  // workload appear in another service's selector.
  const label = meta?.labels?.[SERVICE_LABEL];
  if (label !== undefined && service !== undefined && label !== service) {
    c.report(
      ["metadata", "labels", SERVICE_LABEL],
      `must equal spec.service (${JSON.stringify(service)}) or be omitted (got ${JSON.stringify(label)})`,
    );
  }
  if (service === undefined || address === undefined || port === undefined) return undefined;
  return compact({ service, address, port, identity, zone: z });
}
