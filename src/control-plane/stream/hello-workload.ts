// The Workload a proxy's hello asks to register, checked exactly as `weft apply` checks a Workload —
// by the model's own validator, not a second copy of its rules — so a proxy cannot store (and have
// pushed to every other proxy) labels or a zone that an operator could not apply: huge values, odd
// types, nested objects. Violations are reported with the hello field they came from.

import { WEFT_API_VERSION } from "../../model/resources.ts";
import type { HelloMessage } from "../../model/stream-protocol.ts";
import { validateResource } from "../../model/validate.ts";

/** The parts of the proxy's identity (from its certificate) that the Workload takes. */
export interface HelloPeer {
  id: string;
  namespace: string;
  service: string;
}

/** Where each Workload field comes from in the hello. */
const HELLO_FIELD: Record<string, string> = {
  "metadata.name": "hello.workload",
  "metadata.labels": "hello.labels",
  "spec.address": "hello.address",
  "spec.port": "hello.port",
  "spec.zone": "hello.zone",
};

const MAX_PROBLEM_CHARS = 300;

/** Undefined when the hello describes a valid Workload; else what is wrong, naming the hello field. */
export function checkHelloWorkload(h: HelloMessage, peer: HelloPeer): string | undefined {
  const resource = {
    apiVersion: WEFT_API_VERSION,
    kind: "Workload",
    metadata: { name: h.workload, namespace: peer.namespace, labels: h.labels },
    spec: { service: peer.service, address: h.address, port: h.port, identity: peer.id, zone: h.zone },
  };
  const { violations } = validateResource({
    resource,
    file: "hello",
    doc: 0,
    pos: () => ({ line: 0, column: 0 }),
  });
  if (violations.length === 0) return undefined;
  const [first] = violations;
  const field = Object.keys(HELLO_FIELD).find(
    (f) => first.path === f || (/^[.[]/.test(first.path.slice(f.length)) && first.path.startsWith(f)),
  );
  const path = field ? HELLO_FIELD[field] + first.path.slice(field.length) : first.path;
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : "";
  const problem = `${path}: ${first.message}${more}`;
  return problem.length > MAX_PROBLEM_CHARS ? `${problem.slice(0, MAX_PROBLEM_CHARS - 3)}...` : problem;
}
