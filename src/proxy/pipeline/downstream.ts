// The Downstream contract: what the pipeline needs from the client side of a request, whatever
// protocol carries it. The HTTP/1.1 edge implements it over Node's ServerResponse
// (../http/h1-exchange.ts); an HTTP/2 edge implements it over a node:http2 ServerHttp2Stream.
// One object per request carries both the request record and its Downstream: an edge subclasses
// Exchange (exchange.ts) and implements these methods, so no extra object, closure or promise is
// made per request or per layer.
//
// Order of calls, made by the pipeline (never by filters directly):
//   watchClient()                  once the request is routed and anything may be under way
//   then either  sendLocalReply()  — a local reply (or a redirect through sendHead + end)
//   or           sendHead() → write()* → end(trailers)   — a forwarded response
//   or           sendHead() → write()* → abort()         — the upstream broke off after the head
// and, at any time, the edge calls the exchange's clientGone() when the client went away (HTTP/1:
// the response closed before it finished; HTTP/2: RST_STREAM or the session closed), and
// resumeUpstream() when a write that returned false has drained.
//
// Written with HTTP/2 in mind:
//   - headers travel as flat [name, value, ...] lists with lower- or mixed-case names and no
//     connection-specific headers (Connection, Keep-Alive, Transfer-Encoding, Upgrade are already
//     removed); an HTTP/2 edge lower-cases names and builds its header object from the list, adding
//     `:status`. A list may hold a name twice (set-cookie): the HTTP/2 edge joins or sends arrays.
//   - trailers: an HTTP/2 edge sends the head with `waitForTrailers: true` when the exchange may
//     have trailers (`ProxyRequest.grpc`, or `te: trailers` on the request) and answers the stream's
//     'wantTrailers' with what end() was given (an empty list when none); HTTP/1.1 sends them only
//     when the response is chunked.
//   - abort(): HTTP/1.1 destroys the socket (a short body must never look complete); HTTP/2 resets
//     the stream (RST_STREAM INTERNAL_ERROR), leaving the connection and its other streams alone.
//   - closeAfterResponse(): HTTP/1.1 ends the connection after this response; a no-op on HTTP/2
//     (a draining HTTP/2 edge sends GOAWAY instead).

import type { LocalReply } from "../errors.ts";

export interface Downstream {
  /**
   * Sends the response head. Returns false when the edge refused it (a header value the protocol
   * cannot carry); nothing was sent then, and the exchange answers with a local reply instead.
   * `endStream`: the upstream's head ended its response (HTTP/2 END_STREAM, a gRPC trailers-only
   * response); an HTTP/2 edge keeps that shape (no empty trailers after it), which gRPC clients need.
   */
  sendHead(status: number, headers: string[], endStream?: boolean): boolean;
  /** Writes a body chunk; false when the client's buffer is full (wait for resumeUpstream()). */
  write(chunk: Buffer): boolean;
  /** Ends the response; `trailers` (name, value, ...) or null. */
  end(trailers: (Buffer | string)[] | null): void;
  /** Breaks the response off after its head, so the client sees a failure and not a short body. */
  abort(): void;
  /**
   * Answers with a local reply (HTTP-shaped, or gRPC-shaped when the request is gRPC and the
   * listener has a gRPC shape). `close` ends the connection after it (HTTP/1.1 framing errors);
   * `headers` are added to the reply's (Retry-After). Returns the status sent.
   */
  sendLocalReply(reply: LocalReply, close: boolean, headers: string[] | undefined): number;
  /** From now on, the client going away calls the exchange's clientGone(). Idempotent. */
  watchClient(): void;
  /** Reads and drops what is left of the request body, so the connection can carry the next one. */
  discardBody(): void;
  /** The client can still be answered (its connection or stream is open and was not refused). */
  clientOpen(): boolean;
  /** The connection carries nothing after this response (HTTP/1.1); a no-op where streams multiplex. */
  closeAfterResponse(): void;
  /** The edge drains: the response should tell the client to go elsewhere for the next request. */
  readonly draining: boolean;
}
