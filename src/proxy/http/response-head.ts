// Response headers from the upstream (undici hands them over raw, as Buffers) → the list written to
// the client. Hop-by-hop headers are removed; the proxy re-frames the body itself (Content-Length is
// kept, chunking is Node's). grpc-status is noted for the metrics' grpc_status label, as one of the
// 17 defined codes (../grpc/status.ts): the upstream's raw value never becomes a label.

import { grpcStatusLabelOf } from "../grpc/status.ts";

export interface ResponseHeadFacts {
  grpcStatus: string | undefined;
}

function str(v: Buffer | string): string {
  return typeof v === "string" ? v : v.toString("latin1");
}

/** Appends the client-bound headers of `raw` (name, value, ...; strings, or Buffers from undici) to `out`. */
export function copyResponseHeaders(raw: (Buffer | string)[], out: string[], f: ResponseHeadFacts): void {
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = str(raw[i]);
    const lower = name.toLowerCase();
    switch (lower) {
      case "connection":
        connection = str(raw[i + 1]);
        break;
      case "keep-alive":
      case "proxy-connection":
      case "transfer-encoding":
      case "trailer":
      case "upgrade":
      case "te":
        break;
      case "grpc-status": {
        const v = str(raw[i + 1]);
        f.grpcStatus = grpcStatusLabelOf(v);
        out.push(name, v);
        break;
      }
      default:
        out.push(name, str(raw[i + 1]));
    }
  }
  if (connection !== undefined) {
    for (const t of connection.split(",")) {
      const token = t.trim().toLowerCase();
      if (token === "" || token === "keep-alive" || token === "close") continue;
      for (let i = out.length - 2; i >= 0; i -= 2) if (out[i].toLowerCase() === token) out.splice(i, 2);
    }
  }
}

/** Notes the grpc-status of raw trailers (name, value, ...), for edges that write them as they are. */
export function noteTrailerStatus(raw: readonly (Buffer | string)[], f: ResponseHeadFacts): void {
  for (let i = 0; i < raw.length; i += 2) {
    const name = str(raw[i]);
    if (name.length === 11 && name.toLowerCase() === "grpc-status")
      f.grpcStatus = grpcStatusLabelOf(str(raw[i + 1]));
  }
}

/** Trailers (raw, as undici gives them) → an object for ServerResponse.addTrailers, noting grpc-status. */
export function trailersObject(raw: (Buffer | string)[], f: ResponseHeadFacts): Record<string, string> {
  const t: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = str(raw[i]).toLowerCase();
    const value = str(raw[i + 1]);
    if (name === "grpc-status") f.grpcStatus = grpcStatusLabelOf(value);
    t[name] = t[name] === undefined ? value : `${t[name]}, ${value}`;
  }
  return t;
}
