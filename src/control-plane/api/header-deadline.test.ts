// The config API's header deadline on a manual clock and a stall the test controls: a connection
// that sends no headers is cut after the timeout; one that waited while the control plane itself was
// stalled is not — its request, once read, is answered (what node's wall-clock headersTimeout got
// wrong during a start storm: it reset clients whose headers sat unread behind the stall).

import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { connect } from "node:tls";
import { ManualClock } from "../../store/embedded/testdata/manual-clock.ts";
import { startTestApi } from "./testdata/test-api.ts";

async function setup(t: Parameters<typeof startTestApi>[0]) {
  const clock = new ManualClock();
  let stalled = 0;
  const lag = { stalledMs: () => stalled };
  const api = await startTestApi(t, { clock, lag, headersTimeoutMs: 10_000 });
  const open = async () => {
    const socket = connect({ host: "127.0.0.1", port: api.port, ca: api.ca });
    socket.setEncoding("utf8");
    let received = "";
    socket.on("data", (d: string) => (received += d));
    socket.on("error", () => {});
    const closed = once(socket, "close").then(() => received);
    await once(socket, "secureConnect");
    // The server counts the connection once its side of the handshake is done.
    while (api.server.headerDeadline.waiting === 0) await new Promise((r) => setImmediate(r));
    t.after(() => socket.destroy());
    return { socket, closed, received: () => received };
  };
  return { clock, api, open, stall: (ms: number) => (stalled += ms) };
}

test("a connection that sends no request headers is cut after the timeout", async (t) => {
  const { clock, api, open } = await setup(t);
  const c = await open();
  clock.advance(9_000);
  assert.equal(api.server.headerDeadline.cut, 0, "not before the timeout");
  clock.advance(2_000);
  assert.equal(await c.closed, "", "cut without an answer");
  assert.equal(api.server.headerDeadline.cut, 1);
});

test("time the control plane was stalled is not counted: the waiting request is answered, not reset", async (t) => {
  const { clock, api, open, stall } = await setup(t);
  const c = await open();
  stall(20_000); // the control plane's loop was blocked for 20 s of the 21 s that pass
  clock.advance(21_000);
  assert.equal(api.server.headerDeadline.cut, 0);
  c.socket.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
  while (!c.received().includes("\r\n\r\n")) await once(c.socket, "data");
  assert.match(c.received(), /^HTTP\/1\.1 200/);
  // After the answer the wait for the next request's headers starts over (keep-alive).
  while (api.server.headerDeadline.waiting === 0) await new Promise((r) => setImmediate(r));
  clock.advance(11_000);
  await c.closed;
  assert.equal(api.server.headerDeadline.cut, 1);
});
