import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { TokenIssuer, tokenFingerprint } from "./tokens.ts";
import { isPkiError, type PkiErrorCode } from "./errors.ts";
import { withTempDir } from "./test-ca-helpers.ts";

const T0 = Date.parse("2030-01-01T00:00:00Z");

function clock(start = T0) {
  const c = { t: start, now: () => c.t };
  return c;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const parts = (token: string) => token.split(".");
const claims = (token: string) => JSON.parse(Buffer.from(parts(token)[1], "base64url").toString());

function rejects(issuer: TokenIssuer, token: string, code: PkiErrorCode): void {
  assert.throws(
    () => issuer.verify(token),
    (e) => {
      assert.ok(isPkiError(e, code), `expected ${code}, got ${String(e)}`);
      for (const p of parts(token))
        if (p.length > 8) assert.ok(!e.message.includes(p), "message leaks token");
      return true;
    },
  );
}

test("create/verify round trip returns the bound identity", async () => {
  await withTempDir(async (dir) => {
    const c = clock();
    const issuer = await TokenIssuer.loadOrCreate(dir, { now: c.now });
    const token = issuer.create({ service: "web", namespace: "shop", id: "tok1" });
    const id = issuer.verify(token);
    assert.deepEqual(id, { service: "web", namespace: "shop", exp: T0 / 1000 + 30 * 24 * 3600, jti: "tok1" });
    const cl = claims(token);
    assert.equal(cl.iss, "weft-control-plane");
    assert.equal(cl.sub, "weft:service:shop:web");
    assert.deepEqual(cl.weft, { service: "web", namespace: "shop" });
    assert.equal(cl.iat, T0 / 1000);
    assert.deepEqual(JSON.parse(Buffer.from(parts(token)[0], "base64url").toString()), {
      alg: "ES256",
      typ: "JWT",
      kid: issuer.keyId,
    });
  });
});

test("a token for service A verifies as A, never as B", async () => {
  await withTempDir(async (dir) => {
    const issuer = await TokenIssuer.loadOrCreate(dir);
    const a = issuer.verify(issuer.create({ service: "a", namespace: "default" }));
    assert.equal(a.service, "a");
    assert.notEqual(a.service, "b");
  });
});

test("expiry is enforced with the injected clock", async () => {
  await withTempDir(async (dir) => {
    const c = clock();
    const issuer = await TokenIssuer.loadOrCreate(dir, { now: c.now });
    const token = issuer.create({ service: "web", namespace: "shop", ttlSeconds: 600 });
    c.t = T0 + 599_000;
    assert.equal(issuer.verify(token).service, "web");
    c.t = T0 + 600_000;
    rejects(issuer, token, "token_expired");
  });
});

test("tampered payload, tampered signature and foreign keys are refused", async () => {
  await withTempDir(async (dir) => {
    const issuer = await TokenIssuer.loadOrCreate(join(dir, "a"));
    const other = await TokenIssuer.loadOrCreate(join(dir, "b"));
    const token = issuer.create({ service: "web", namespace: "shop" });
    const [h, p, s] = parts(token);
    const forged = b64({
      ...claims(token),
      weft: { service: "db", namespace: "shop" },
      sub: "weft:service:shop:db",
    });
    rejects(issuer, `${h}.${forged}.${s}`, "token_invalid");
    const sig = Buffer.from(s, "base64url");
    sig[10] ^= 1;
    rejects(issuer, `${h}.${p}.${sig.toString("base64url")}`, "token_invalid");
    rejects(issuer, other.create({ service: "web", namespace: "shop" }), "token_invalid");
    for (const junk of ["", "a.b", "a.b.c", `${h}.${p}`, `${h}.${p}.${s}.x`, `${h}.${p}.${s}=`]) {
      rejects(issuer, junk, "token_invalid");
    }
  });
});

test("alg=none and other algorithms are refused", async () => {
  await withTempDir(async (dir) => {
    const issuer = await TokenIssuer.loadOrCreate(dir);
    const token = issuer.create({ service: "web", namespace: "shop" });
    const [, p, s] = parts(token);
    rejects(issuer, `${b64({ alg: "none", typ: "JWT" })}.${p}.`, "token_invalid");
    rejects(issuer, `${b64({ alg: "none" })}.${p}.${s}`, "token_invalid");
    rejects(issuer, `${b64({ alg: "HS256", typ: "JWT" })}.${p}.${s}`, "token_invalid");
    rejects(issuer, `${b64({ alg: "ES384", typ: "JWT" })}.${p}.${s}`, "token_invalid");
  });
});

test("a validly signed token with a wrong issuer or malformed claims is refused", async () => {
  await withTempDir(async (dir) => {
    const issuer = await TokenIssuer.loadOrCreate(dir, { now: () => T0 });
    const key = createPrivateKey(await readFile(join(dir, "tokens", "signing.key")));
    const mint = (payload: Record<string, unknown>) => {
      const input = `${b64({ alg: "ES256", typ: "JWT" })}.${b64(payload)}`;
      return `${input}.${sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
    };
    const base = {
      iss: "weft-control-plane",
      sub: "weft:service:shop:web",
      weft: { service: "web", namespace: "shop" },
      iat: T0 / 1000,
      exp: T0 / 1000 + 60,
      jti: "j",
    };
    assert.equal(issuer.verify(mint(base)).service, "web");
    rejects(issuer, mint({ ...base, iss: "someone-else" }), "token_invalid");
    rejects(issuer, mint({ ...base, sub: "weft:service:shop:db" }), "token_invalid");
    rejects(issuer, mint({ ...base, weft: { service: "../x", namespace: "shop" } }), "token_invalid");
    rejects(issuer, mint({ ...base, exp: undefined }), "token_invalid");
    rejects(issuer, mint({ ...base, nbf: T0 / 1000 + 3600 }), "token_invalid");
    rejects(issuer, mint({ ...base, iat: T0 / 1000 + 3600 }), "token_invalid");
  });
});

test("the signing key persists (0600) and reloads", async () => {
  await withTempDir(async (dir) => {
    const a = await TokenIssuer.loadOrCreate(dir);
    const token = a.create({ service: "web", namespace: "shop" });
    assert.equal((await stat(join(dir, "tokens", "signing.key"))).mode & 0o777, 0o600);
    const b = await TokenIssuer.loadOrCreate(dir);
    assert.equal(b.keyId, a.keyId);
    assert.equal(b.verify(token).service, "web");
  });
});

test("a non-P-256 signing key on disk is refused", async () => {
  await withTempDir(async (dir) => {
    await TokenIssuer.loadOrCreate(dir);
    const { writeFile } = await import("node:fs/promises");
    const ed = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" });
    await writeFile(join(dir, "tokens", "signing.key"), ed);
    await assert.rejects(TokenIssuer.loadOrCreate(dir), (e) => isPkiError(e, "token_key_invalid"));
  });
});

test("create refuses identities that cannot become SPIFFE IDs", async () => {
  await withTempDir(async (dir) => {
    const issuer = await TokenIssuer.loadOrCreate(dir);
    assert.throws(
      () => issuer.create({ service: "a/b", namespace: "shop" }),
      (e) => isPkiError(e, "token_invalid"),
    );
    assert.throws(
      () => issuer.create({ service: "a", namespace: "" }),
      (e) => isPkiError(e, "token_invalid"),
    );
    for (const ttlSeconds of [-1, 0, 59, 1.5, 365 * 24 * 3600 + 1, Number.MAX_VALUE, Infinity, NaN]) {
      assert.throws(
        () => issuer.create({ service: "a", namespace: "x", ttlSeconds }),
        (e) => isPkiError(e, "token_invalid"),
        String(ttlSeconds),
      );
    }
  });
});

test("tokenFingerprint is short, stable and does not contain the token", () => {
  const fp = tokenFingerprint("header.payload.signature");
  assert.match(fp, /^[0-9a-f]{12}$/);
  assert.equal(fp, tokenFingerprint("header.payload.signature"));
  assert.notEqual(fp, tokenFingerprint("header.payload.signaturf"));
});

test("a verified token is remembered until it expires: later checks agree, and no caller can alter it", async () => {
  await withTempDir(async (dir) => {
    const c = clock();
    const issuer = await TokenIssuer.loadOrCreate(dir, { now: c.now });
    const token = issuer.create({ service: "web", namespace: "shop", ttlSeconds: 600 });
    const first = issuer.verify(token);
    first.service = "db"; // a caller's copy, not the remembered identity
    assert.equal(issuer.verify(token).service, "web");
    const [h, p, s] = parts(token);
    rejects(issuer, `${h}.${p}.${s.slice(0, -2)}AA`, "token_invalid"); // another string: checked afresh
    c.t = T0 + 600_000;
    rejects(issuer, token, "token_expired");
  });
});
