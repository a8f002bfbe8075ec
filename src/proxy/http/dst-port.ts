// Which port of a multi-port Service an HTTP request targets, as it travels between sidecars. The
// calling sidecar knows it (the port in the request's authority, or its --upstream port's service
// port) and tells a mesh endpoint in DST_PORT_HEADER; the server sidecar honours the header only from
// a verified mTLS peer and never forwards it to the app (request-head.ts records it, does not copy
// it), then sends the request to the app port serving that service port. Single-port Services, and
// requests to a Service's first port, carry no header: the server's default app port serves them.

export const DST_PORT_HEADER = "x-weft-dst-port";

/**
 * The service port a request to `host` targets: the authority's port when the Service declares it,
 * else `first` (no port, the implicit :80 of http://name/, or a port the Service does not declare —
 * the host table only resolves declared ones and :80).
 */
export function requestedPort(host: string, declared: readonly number[], first: number): number {
  const colon = host.lastIndexOf(":");
  if (colon < 0 || host.endsWith("]")) return first;
  const port = Number(host.slice(colon + 1));
  return declared.includes(port) ? port : first;
}

/** A DST_PORT_HEADER value: a port number, else undefined (malformed values are ignored). */
export function parseDstPort(value: string | undefined): number | undefined {
  if (value === undefined || !/^[1-9][0-9]{0,4}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= 65535 ? n : undefined;
}
