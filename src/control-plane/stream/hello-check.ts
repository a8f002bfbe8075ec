// The checks of what a proxy says on the config stream before anything is stored: its hello (shape,
// bounds, and that the workload name belongs to the service its certificate names; the Workload
// fields themselves by the model's validator, hello-workload.ts), its health and serving reports, and
// its on-demand subscribe / unsubscribe messages.
// Each returns undefined when the message is fine, else what is wrong, naming the field.

import { isIP } from "node:net";
import type {
  HealthMessage,
  HelloMessage,
  ServingMessage,
  SubscribeMessage,
  UnsubscribeMessage,
} from "../../model/stream-protocol.ts";
import { subscriptionNameProblem } from "../../model/subscription-names.ts";
import { resourceVersionsProblem } from "../../model/resource-versions.ts";
import { checkHelloWorkload, type HelloPeer } from "./hello-workload.ts";

export function checkServing(m: ServingMessage): string | undefined {
  return typeof m.serving === "boolean" ? undefined : "serving.serving must be true or false";
}

export function checkHealth(h: HealthMessage): string | undefined {
  if (typeof h.healthy !== "boolean") return "health.healthy must be true or false";
  if (h.detail !== undefined && (typeof h.detail !== "string" || h.detail.length > MAX_HEALTH_DETAIL))
    return `health.detail must be a string of at most ${MAX_HEALTH_DETAIL} characters`;
  return undefined;
}

const MAX_HEALTH_DETAIL = 1024;

export function checkHello(h: HelloMessage, peer: HelloPeer): string | undefined {
  if (typeof h.workload !== "string" || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(h.workload))
    return "hello.workload must be a DNS label";
  if (!h.workload.startsWith(`${peer.service}-`)) return `hello.workload must start with "${peer.service}-"`;
  if (typeof h.address !== "string" || !isIP(h.address)) return "hello.address must be an IP address";
  for (const f of ["port", "appPort"] as const) {
    const v = h[f];
    if (!Number.isInteger(v) || v < 1 || v > 65535) return `hello.${f} must be a port number`;
  }
  if (h.reach !== undefined && (!Array.isArray(h.reach) || h.reach.some((r) => typeof r !== "string")))
    return "hello.reach must be a list of service names";
  if (h.serving !== undefined && typeof h.serving !== "boolean") return "hello.serving must be true or false";
  if (h.deltas !== undefined && typeof h.deltas !== "boolean") return "hello.deltas must be true or false";
  if (h.appPorts !== undefined) {
    if (typeof h.appPorts !== "object" || h.appPorts === null || Array.isArray(h.appPorts))
      return "hello.appPorts must map service ports (number or name) to app ports";
    const entries = Object.entries(h.appPorts);
    if (entries.length > MAX_APP_PORTS) return `hello.appPorts may name at most ${MAX_APP_PORTS} ports`;
    for (const [k, v] of entries) {
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(k))
        return `hello.appPorts: ${JSON.stringify(k.slice(0, 70))} is not a port number or name`;
      if (!Number.isInteger(v) || v < 1 || v > 65535) return `hello.appPorts.${k} must be a port number`;
    }
  }
  return checkHelloFields(h, peer);
}

/** Bounds and shapes of the hello fields beyond the basics above: the Workload's, as `weft apply` has them. */
function checkHelloFields(h: HelloMessage, peer: HelloPeer): string | undefined {
  if (h.reach !== undefined) {
    if (h.reach.length > MAX_REACH) return `hello.reach may name at most ${MAX_REACH} services`;
    const bad = h.reach.findIndex((r) => !SERVICE_REF.test(r));
    if (bad >= 0) return `hello.reach[${bad}] must be a service name ("name" or "name.namespace")`;
  }
  if (h.onDemand !== undefined && typeof h.onDemand !== "boolean")
    return "hello.onDemand must be true or false";
  if (h.subscriptions !== undefined) {
    if (h.onDemand !== true) return "hello.subscriptions needs hello.onDemand";
    const problem = checkNames("hello.subscriptions", h.subscriptions, MAX_SUBSCRIPTIONS);
    if (problem) return problem;
  }
  if (h.version !== undefined && (typeof h.version !== "string" || h.version.length > 64))
    return "hello.version must be a snapshot version string";
  if (h.resources !== undefined) {
    if (h.version === undefined) return "hello.resources needs hello.version";
    const problem = resourceVersionsProblem(h.resources, "hello.resources", {
      maxEntries: MAX_HELLO_ENTRIES,
    });
    if (problem) return problem;
  }
  return checkHelloWorkload(h, peer);
}

/**
 * A subscribe or unsubscribe message's names: a list of at most MAX_NAMES_PER_MESSAGE subscription
 * names (lower-case host names of at most 5 labels and 253 characters).
 */
export function checkSubscription(m: SubscribeMessage | UnsubscribeMessage): string | undefined {
  return checkNames(`${m.type}.names`, m.names, MAX_NAMES_PER_MESSAGE);
}

function checkNames(field: string, names: unknown, max: number): string | undefined {
  if (!Array.isArray(names)) return `${field} must be a list of host names`;
  if (names.length > max) return `${field} may hold at most ${max} names (has ${names.length})`;
  for (let i = 0; i < names.length; i++) {
    const problem = subscriptionNameProblem(names[i]);
    if (problem) return `${field}[${i}] ${problem}`;
  }
  return undefined;
}

/** Names in one subscribe or unsubscribe message. */
export const MAX_NAMES_PER_MESSAGE = 64;
/** Names one proxy may hold subscribed (the proxy's own bound is the same by default). */
export const MAX_SUBSCRIPTIONS = 1024;
const MAX_REACH = 1000;
/** Entries per section of hello.resources (the 64 KiB message holds about 1500 anyway). */
const MAX_HELLO_ENTRIES = 4096;
const MAX_APP_PORTS = 100;
const SERVICE_REF = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$/;
