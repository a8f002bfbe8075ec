// What an HTTP/1.1 Upgrade request is to the proxy, decided from its head alone: whether it becomes a
// tunnel (Node's 'upgrade' event, see ../http/server-edge.ts), which protocol label its metrics carry,
// why it is refused before anything is sent upstream, and the 101 head written back to the client.
//
// Decisions (docs/proxy.md, "WebSocket and Upgrade"):
// - `Upgrade: h2c` is never tunnelled: the request is served as plain HTTP/1.1 with Upgrade and
//   HTTP2-Settings removed (RFC 9113 §3.1 deprecates h2c upgrade; forwarding it lets a client open
//   an HTTP/2 connection to the app behind every route — the "h2c smuggling" hole). Every other token
//   (websocket, or anything an app defines) is tunnelled once the app answers 101.
// - An upgrade request with a body (Content-Length > 0 or Transfer-Encoding) is refused (400): after
//   the head the bytes belong to the new protocol, so a body would be read as the tunnel's first
//   bytes by one side and as a request body by the other.

import type { IncomingMessage } from "node:http";
import type { HeaderModifier } from "../../model/snapshot.ts";
import { modifyHeaders } from "../http/header-list.ts";

/** The label of weft_upgrades_*{protocol}: bounded, whatever a client sends. */
export type UpgradeProtocol = "websocket" | "other";

/** Upgrade tokens that are never tunnelled (protocol name before any "/version"). */
function isH2c(token: string): boolean {
  const t = token.trim().toLowerCase();
  return t === "h2c" || t.startsWith("h2c/");
}

/**
 * Node's shouldUpgradeCallback: true makes the request an 'upgrade' (a tunnel once answered 101),
 * false leaves it an ordinary request (Upgrade is then stripped like any hop-by-hop header).
 * Node only asks for requests that carry both `Connection: upgrade` and `Upgrade`.
 */
export function isTunnelUpgrade(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  if (u === undefined || u.trim() === "") return false;
  return !u.split(",").some(isH2c);
}

export function protocolOf(upgrade: string | undefined): UpgradeProtocol {
  return upgrade !== undefined && /^\s*websocket\s*$/i.test(upgrade) ? "websocket" : "other";
}

/** Why an upgrade request is refused before routing (→ 400, connection closed), or undefined. */
export function upgradeBodyRefusal(f: {
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}): string | undefined {
  if (f.transferEncoding !== undefined) return "an Upgrade request must not have a body (Transfer-Encoding)";
  if (f.contentLength !== undefined && f.contentLength !== "0")
    return "an Upgrade request must not have a body (Content-Length)";
  return undefined;
}

/** Response headers never copied into the 101 written to the client (the proxy frames the tunnel). */
const DROPPED_101 = new Set(["keep-alive", "proxy-connection", "transfer-encoding", "content-length", "te"]);

/**
 * The 101 head for the client, from the upstream's raw response headers (llhttp parsed them, so no
 * CR/LF can be in them): Connection and Upgrade are kept — they are the point of a 101 — and a
 * route's ResponseHeaderModifier applies as it does to any response.
 */
export function switchingProtocolsHead(
  statusMessage: string,
  raw: string[],
  modifier: HeaderModifier | undefined,
): string {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (DROPPED_101.has(raw[i].toLowerCase())) continue;
    out.push(raw[i], raw[i + 1]);
  }
  if (modifier !== undefined) modifyHeaders(out, modifier);
  let head = `HTTP/1.1 101 ${/^[\t -~]*$/.test(statusMessage) ? statusMessage : "Switching Protocols"}\r\n`;
  for (let i = 0; i < out.length; i += 2) head += `${out[i]}: ${out[i + 1]}\r\n`;
  return head + "\r\n";
}
