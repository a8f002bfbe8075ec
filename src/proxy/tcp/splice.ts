// Joins two sockets into one proxied TCP connection: bytes both ways with back-pressure, half-close,
// an idle timeout, and one end for the whole (metrics, the balancer's end-of-connection).
//
// - Back-pressure: a side whose peer's write buffer is full is paused until 'drain' — memory per
//   connection stays at about two socket buffers, whatever the transfer size.
// - Half-close: when one side ends (FIN, or a TLS close_notify), the other side's write half is ended
//   and the other direction keeps flowing (both sockets must be allowHalfOpen). The connection is over
//   once both directions have ended, or either side errors or closes (then both are destroyed).
// - Idle: no byte either way for `idleTimeoutMs` (0 = never) destroys both.
// Bytes are counted as they flow, so a long-lived connection's traffic shows while it lasts.

import type { Socket } from "node:net";
import type { TcpStats } from "../metrics/registry.ts";

export interface SpliceOptions {
  idleTimeoutMs: number;
  stats: TcpStats;
  /** Called once, when both sockets are done. `error` when it ended by an error or the idle timeout. */
  onEnd?: (error: Error | undefined) => void;
}

/** Default idle timeout of a proxied TCP connection (Envoy's tcp_proxy default: 1 hour). */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 60 * 60 * 1000;

/** `client` is the downstream (its bytes count as received), `server` the upstream. */
export function splice(client: Socket, server: Socket, opts: SpliceOptions): void {
  const { stats } = opts;
  let ended = 0;
  let done = false;
  stats.opened.value++;
  stats.active.value++;

  // Ends the connection once. After both directions ended normally the sockets close on their own
  // once their writes are flushed; otherwise (an error, a reset, the idle timeout) both are cut.
  const finish = (err: Error | undefined) => {
    if (done) return;
    done = true;
    clearInterval(idleTimer);
    stats.active.value--;
    stats.closed.value++;
    if (ended < 2) {
      client.destroy();
      server.destroy();
    }
    opts.onEnd?.(err);
  };
  const fail = (err: Error) => finish(err);

  let quietTicks = 0;
  const idleMs = opts.idleTimeoutMs;
  // One coarse timer per connection instead of re-arming a timer on every chunk: a connection
  // idle for between idleMs and 1.5 × idleMs is cut.
  const idleTimer =
    idleMs > 0
      ? setInterval(
          () => {
            if (++quietTicks > 2) fail(new Error(`idle for ${idleMs} ms`));
          },
          Math.max(1, Math.floor(idleMs / 2)),
        )
      : undefined;
  idleTimer?.unref();

  const oneWay = (from: Socket, to: Socket, counter: TcpStats["received"]) => {
    from.on("data", (chunk: Buffer) => {
      quietTicks = 0;
      counter.value += chunk.length;
      if (!to.write(chunk)) from.pause();
    });
    to.on("drain", () => from.resume());
    from.once("end", () => {
      // Half-close: pass the FIN on; the other direction keeps flowing.
      if (!to.destroyed) to.end();
      if (++ended === 2) finish(undefined);
    });
  };
  oneWay(client, server, stats.received);
  oneWay(server, client, stats.sent);
  for (const s of [client, server]) {
    s.on("error", fail);
    // A socket that closes before both directions ended (a reset, destroyed): the connection is over.
    s.once("close", () => finish(ended < 2 ? new Error("connection reset") : undefined));
  }
  client.resume();
  server.resume();
}
