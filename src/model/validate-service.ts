// Service: a logical service — its ports and which workloads back it.

import type { Checker } from "./checker.ts";
import { compact } from "./checker.ts";
import { formatPath } from "./field-path.ts";
import { dnsLabel, labelKey, labelValue } from "./names.ts";
import { DEFAULT_PROTOCOL, PROTOCOLS, SERVICE_LABEL } from "./resources.ts";
import type { Metadata, ServicePort, ServiceSpec } from "./resources.ts";

export const SERVICE_SPEC_FIELDS = ["ports", "selector"] as const;
export const SERVICE_PORT_FIELDS = ["name", "port", "protocol"] as const;

export function validateServiceSpec(
  c: Checker,
  value: unknown,
  _meta: Metadata | undefined,
): ServiceSpec | undefined {
  const path = ["spec"];
  const spec = c.mapping(path, value, SERVICE_SPEC_FIELDS);
  if (value !== undefined && value !== null && !spec) return undefined;
  const out: ServiceSpec = {};

  const ports = c.list([...path, "ports"], spec?.ports);
  if (ports) {
    const byPort = new Map<number, number>();
    const byName = new Map<string, number>();
    out.ports = [];
    ports.forEach((raw, i) => {
      const p = [...path, "ports", i];
      const port = validatePort(c, p, raw);
      if (!port) return;
      out.ports!.push(port);
      const samePort = byPort.get(port.port);
      if (samePort !== undefined) {
        c.report(
          [...p, "port"],
          `duplicate port ${port.port} (also ${formatPath([...path, "ports", samePort])})`,
        );
      } else byPort.set(port.port, i);
      if (port.name === undefined) return;
      const sameName = byName.get(port.name);
      if (sameName !== undefined) {
        c.report(
          [...p, "name"],
          `duplicate port name ${JSON.stringify(port.name)} (also ${formatPath([...path, "ports", sameName])})`,
        );
      } else byName.set(port.name, i);
    });
  }

  const selector = c.stringMap([...path, "selector"], spec?.selector, { key: labelKey, value: labelValue });
  if (selector && Object.keys(selector).length === 0) {
    c.report(
      [...path, "selector"],
      `must not be empty: an empty selector would match every workload; omit it to select this service's own workloads (${SERVICE_LABEL}: <name>)`,
    );
  } else if (selector) {
    out.selector = selector;
  }
  return out;
}

function validatePort(c: Checker, path: (string | number)[], value: unknown): ServicePort | undefined {
  const raw = c.mapping(path, value, SERVICE_PORT_FIELDS, { required: true });
  if (!raw) return undefined;
  const name = c.string([...path, "name"], raw.name, { rule: dnsLabel });
  const port = c.port([...path, "port"], raw.port, { required: true });
  const protocol = c.oneOf([...path, "protocol"], raw.protocol, PROTOCOLS) ?? DEFAULT_PROTOCOL;
  if (port === undefined) return undefined;
  return compact({ name, port, protocol });
}
