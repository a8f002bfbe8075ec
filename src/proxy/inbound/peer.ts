// Who is calling: the SPIFFE ID of an inbound connection's verified client certificate, read ONCE
// per connection (on 'secureConnection') and cached on the socket. Requests see it as exchange.peer
// (for policy), as `x-forwarded-client-cert: By=<own id>;URI=<peer id>` (for the app), and as the
// metrics' source_service ("name.namespace" from the ID).

import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { parseSpiffeId, peerSpiffeId } from "../../pki/spiffe.ts";
import type { PeerInfo } from "../pipeline/request.ts";
import type { StatsByCode } from "../metrics/registry.ts";

const kPeer = Symbol("weft.peer");

export class InboundPeer implements PeerInfo {
  readonly id: string | undefined;
  /** Trust domain of the SPIFFE ID; the listener refuses one that is not the mesh's. */
  readonly trustDomain: string | undefined;
  readonly service: string;
  /** Remote address, for X-Forwarded-For. */
  readonly address: string | undefined;
  /** Header value for the app; undefined for plaintext peers. */
  readonly xfcc: string | undefined;
  /** Request stats for this peer under the config generation `statsGen` (see listener.ts). */
  stats: StatsByCode | undefined = undefined;
  statsGen = -1;

  constructor(id: string | undefined, address: string | undefined, ownId: string | undefined) {
    this.id = id;
    const parts = id === undefined ? undefined : parseSpiffeId(id);
    this.trustDomain = parts?.trustDomain;
    this.service = parts ? `${parts.serviceAccount}.${parts.namespace}` : "unknown";
    this.address = address;
    this.xfcc = id === undefined ? undefined : ownId === undefined ? `URI=${id}` : `By=${ownId};URI=${id}`;
  }
}

/**
 * Reads and caches the peer of a TLS connection. Returns undefined when the (already verified)
 * certificate carries no single weft SPIFFE ID: the caller refuses such a connection.
 */
export function attachTlsPeer(socket: TLSSocket, ownId: string | undefined): InboundPeer | undefined {
  const id = peerSpiffeId(socket.getPeerCertificate());
  if (id === undefined) return undefined;
  const peer = new InboundPeer(id, socket.remoteAddress, ownId);
  (socket as TLSSocket & { [kPeer]?: InboundPeer })[kPeer] = peer;
  return peer;
}

/** Marks a plaintext connection (PERMISSIVE mode): no identity, source_service "unknown". */
export function attachPlaintextPeer(socket: Socket): InboundPeer {
  const peer = new InboundPeer(undefined, socket.remoteAddress, undefined);
  (socket as Socket & { [kPeer]?: InboundPeer })[kPeer] = peer;
  return peer;
}

export function peerOf(socket: Socket | null): InboundPeer | undefined {
  return (socket as (Socket & { [kPeer]?: InboundPeer }) | null)?.[kPeer];
}
