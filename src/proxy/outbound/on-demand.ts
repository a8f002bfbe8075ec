// The outbound listener's side of on-demand config (../agent/subscriptions.ts): which misses are worth
// asking the control plane about, and how a request or a CONNECT waits for the answer without being
// lost or leaked — the request body stays unread, a client that leaves ends the wait (an HTTP
// exchange through its usual abort hook, an upgrade or CONNECT by its socket's close — which a
// paused socket may only notice when the wait ends, at the latest at the discovery timeout), and the
// listener routes it once more (never in a loop) when the answer comes.

import type { Socket } from "node:net";
import { subscriptionName } from "../../model/subscription-names.ts";
import type { DiscoveryResult, Subscriptions } from "../agent/subscriptions.ts";
import { DONE, type Exchange } from "../pipeline/exchange.ts";
import { UpgradeExchange } from "../upgrade/upgrade-exchange.ts";
import type { OutboundTable } from "./compile.ts";

/**
 * The subscription name of a host the running config does not have, if it is worth asking for: a
 * possible mesh name, not already known to name nothing. Undefined also when the host is in `t`.
 */
export function discoverable(subs: Subscriptions, t: OutboundTable, host: string): string | undefined {
  if (t.hosts.get(host) !== undefined) return undefined;
  const name = subscriptionName(host);
  return name === undefined || subs.isUnresolved(name) ? undefined : name;
}

/**
 * `x` waits for `name`; `found` routes it once more. Otherwise it is answered no_route saying why
 * (the table at that time explains a miss), or abandoned if its client left.
 */
export function waitForExchange(
  subs: Subscriptions,
  x: Exchange,
  host: string,
  name: string,
  found: () => void,
  table: () => OutboundTable | undefined,
): void {
  let cancel: (() => void) | undefined = undefined;
  const onGone = () => cancel?.();
  // The client going, or its deadline passing, calls the abort hook (a forward later replaces it).
  x.watchClient();
  x.onConnect(onGone);
  // An upgrade's client connection is detached from the HTTP server: watched directly.
  const socket = x instanceof UpgradeExchange ? x.socket : undefined;
  socket?.once("close", onGone);
  cancel = subs.wait(name, (result) => {
    socket?.off("close", onGone);
    if (x.state === DONE) return;
    if (result === "gone") return x.abandon(0);
    if (result === "found") return found();
    x.reply("no_route", missDetail(result, host, subs, table()));
  });
}

/** A CONNECT waits for `name` (its socket unread); `then` handles it once more unless it was closed. */
export function waitForConnect(subs: Subscriptions, socket: Socket, name: string, then: () => void): void {
  let cancel: (() => void) | undefined = undefined;
  const onClose = () => cancel?.();
  socket.once("close", onClose);
  cancel = subs.wait(name, () => {
    socket.off("close", onClose);
    if (!socket.destroyed) then();
  });
}

function missDetail(
  result: DiscoveryResult,
  host: string,
  subs: Subscriptions,
  t: OutboundTable | undefined,
): string {
  if (result === "busy")
    return `too many destinations are being discovered at once; ${JSON.stringify(host)} was not asked for`;
  if (result === "timeout")
    return `the control plane did not send config for ${JSON.stringify(host)} within ${subs.timeoutMs} ms`;
  return t?.hosts.explainMiss(host) ?? `${JSON.stringify(host)} is not a mesh service`;
}
