// The catalogue's rescue: every cause code has its reply, foreign errors are named in weft's terms,
// and the details say where the request went.

import assert from "node:assert/strict";
import test from "node:test";
import { causeOf, LOCAL_REPLIES, ProxyError, rescue, WeftError, type WeftErrorCode } from "./errors.ts";
import { requestNotSent, UpstreamError } from "./transport/upstream.ts";

const AT = "reviews.default at 10.0.0.7:9080";

test("rescue: every cause code maps to a catalogued local reply with its status", () => {
  const expected: Record<WeftErrorCode, string> = {
    WEFT_ERR_UPSTREAM_CONNECT: "upstream_unavailable",
    WEFT_ERR_UPSTREAM_TLS: "upstream_tls_error",
    WEFT_ERR_UPSTREAM_IDENTITY: "upstream_tls_error",
    WEFT_ERR_NO_CERTIFICATE: "not_ready",
    WEFT_ERR_UPSTREAM_HEADERS_TIMEOUT: "timeout",
    WEFT_ERR_UPSTREAM_BODY_TIMEOUT: "timeout",
    WEFT_ERR_UPSTREAM_PROTOCOL: "upstream_reset",
    WEFT_ERR_UPSTREAM_CLOSED: "upstream_reset",
    WEFT_ERR_REQUEST_BODY: "bad_request",
    WEFT_ERR_REQUEST_INVALID: "bad_request",
    WEFT_ERR_POOL_CLOSED: "upstream_unavailable",
    WEFT_ERR_CIRCUIT_OPEN: "circuit_open",
    WEFT_ERR_CLIENT_GONE: "upstream_reset",
  };
  for (const [cause, code] of Object.entries(expected)) {
    const r = rescue(new WeftError(cause as WeftErrorCode, "boom"), AT);
    assert.equal(r.code, code, cause);
    assert.equal(r.status, LOCAL_REPLIES[r.code].status, cause);
    assert.doesNotMatch(r.detail, /\n/);
  }
});

test("rescue: details name the upstream and what happened", () => {
  assert.deepEqual(rescue(new ProxyError("WEFT_ERR_UPSTREAM_CONNECT", "refused the connection"), AT), {
    code: "upstream_unavailable",
    status: 503,
    detail: `${AT} refused the connection`,
  });
  assert.equal(
    rescue(new UpstreamError("WEFT_ERR_UPSTREAM_PROTOCOL", "bad status line"), AT).detail,
    `${AT} sent an invalid response: bad status line`,
  );
  assert.equal(
    rescue(new ProxyError("WEFT_ERR_NO_CERTIFICATE", "x"), AT).detail,
    `${AT} needs mTLS and the proxy has no certificate yet`,
  );
});

test("transport errors are WeftErrors; only connect-time ones prove the request was not sent", () => {
  const connect = new ProxyError("WEFT_ERR_UPSTREAM_TLS", "handshake failed");
  const sent = new UpstreamError("WEFT_ERR_UPSTREAM_CLOSED", "reset");
  const queued = new UpstreamError("WEFT_ERR_POOL_CLOSED", "closed", { requestSent: false });
  assert.ok(connect instanceof WeftError && sent instanceof WeftError);
  assert.equal(requestNotSent(connect), true);
  assert.equal(requestNotSent(sent), false);
  assert.equal(requestNotSent(queued), true);
});

test("foreign errors (undici, sockets) are named in weft's terms and keep their cause", () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  const w = causeOf(refused);
  assert.equal(w.code, "WEFT_ERR_UPSTREAM_CONNECT");
  assert.equal(w.cause, refused);
  assert.equal(w.requestSent, true, "a foreign error does not prove the request was not sent");
  assert.equal(rescue(refused, AT).detail, `${AT} refused the connection`);
  const headers = Object.assign(new Error("x"), { code: "UND_ERR_HEADERS_TIMEOUT" });
  assert.deepEqual(rescue(headers, AT), {
    code: "timeout",
    status: 504,
    detail: `${AT} sent no response headers in time`,
  });
  assert.equal(
    rescue(Object.assign(new Error("y"), { code: "EHOSTUNREACH" }), AT).detail,
    `${AT} unreachable (EHOSTUNREACH)`,
  );
  assert.equal(rescue(new Error("no code"), AT).detail, `${AT} closed the connection (error)`);
  assert.equal(rescue(null, AT).code, "upstream_reset");
});
