// Certificate signing under load, over real TLS sockets: signing is rate-limited and admitted one
// identity at a time in turn; a caller past the queue's bounds gets 503 `overloaded` with a Retry-After at once (never a
// reset, never a silent wait), a queued caller is answered once its turn comes, and one identity
// cannot take another's place in the queue.

import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { connect, type TLSSocket } from "node:tls";
import { generateWorkloadKeyAndCsr } from "../../pki/csr.ts";
import { ManualClock } from "../../store/embedded/testdata/manual-clock.ts";
import { startTestApi } from "./testdata/test-api.ts";

/** One raw HTTP/1.1 CSR request for `service`, with its join token. */
type Api = Awaited<ReturnType<typeof startTestApi>>;
async function csrRequest(api: Api, service: string) {
  const { port, ca } = api;
  const token = api.token(service);
  const { csrPem } = await generateWorkloadKeyAndCsr(`spiffe://weft.local/ns/default/sa/${service}`);
  const body = JSON.stringify({ csr: csrPem });
  const socket: TLSSocket = connect({ host: "127.0.0.1", port, ca });
  await once(socket, "secureConnect");
  let received = "";
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => (received += d));
  socket.on("error", () => {});
  const answered = new Promise<string>((resolve) => {
    const check = () => {
      const end = received.indexOf("\r\n\r\n");
      const len = /content-length: (\d+)/i.exec(received);
      if (end >= 0 && len && received.length >= end + 4 + Number(len[1])) resolve(received);
    };
    socket.on("data", check);
    socket.on("close", () => resolve(received));
  });
  socket.write(
    `POST /api/v1/certificates HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`,
  );
  socket.write(body);
  return { answered, socket };
}

const status = (res: string) => Number(/^HTTP\/1\.1 (\d+)/.exec(res)?.[1]);

test("past its bounds signing answers 503 overloaded with Retry-After; queued callers get their certificates", async (t) => {
  const clock = new ManualClock();
  const api = await startTestApi(t, {
    clock,
    // One signature per 5 s of the manual clock: the queue holds whoever comes after the first.
    signing: { ratePerSecond: 0.2, burst: 1, maxQueued: 2, maxQueuedPerIdentity: 1, maxWaitMs: 60_000 },
  });
  const first = await (await csrRequest(api, "web")).answered;
  assert.equal(status(first), 200, "the burst: signed at once");
  const queuedWeb = await csrRequest(api, "web");
  await waitFor(() => api.server.signing.stats.queued === 1);

  // web already has its share of the queue: refused at once, with a reason and a Retry-After.
  const refused = await (await csrRequest(api, "web")).answered;
  assert.equal(status(refused), 503);
  assert.match(refused, /retry-after: \d+/i);
  assert.match(refused, /"code": "overloaded"/);
  assert.match(refused, /"reason": "key_queue_full"/);
  assert.match(refused, /"retryAfterSeconds": \d+/);

  // Another identity still gets a place: the noisy one cannot fill the queue.
  const queuedApi = await csrRequest(api, "api");
  await waitFor(() => api.server.signing.stats.queued === 2);
  // The queue is full now: anyone is refused.
  assert.equal(status(await (await csrRequest(api, "db")).answered), 503);

  // Each 5 s brings a token, and the next identity in the ring its certificate.
  for (const r of [queuedWeb, queuedApi]) {
    clock.advance(5_000);
    const res = await r.answered;
    assert.equal(status(res), 200, res.slice(0, 200));
    assert.match(res, /BEGIN CERTIFICATE/);
    r.socket.destroy();
  }
  assert.deepEqual(api.server.signing.stats.refused, { queue_full: 1, key_queue_full: 1, queue_timeout: 0 });
});

test("the signing rate is limited: beyond the burst, requests start at the configured rate", async (t) => {
  const api = await startTestApi(t, { signing: { ratePerSecond: 5, burst: 2 } });
  const started = Date.now();
  const all = await Promise.all(
    Array.from({ length: 5 }, async () => (await csrRequest(api, "web")).answered),
  );
  for (const res of all) assert.equal(status(res), 200);
  // 2 at once, then 3 more at 5 per second: at least 600 ms (without the limit, a few ms each).
  assert.ok(Date.now() - started >= 550, `5 signatures took ${Date.now() - started} ms`);
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), "condition not reached");
}
