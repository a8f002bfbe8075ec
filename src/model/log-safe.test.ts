import { test } from "node:test";
import assert from "node:assert/strict";
import { logSafe } from "./log-safe.ts";

test("logSafe: newlines, terminal escapes and bidi overrides become visible escapes; one line out", () => {
  const forged = "bad route\n2026-01-01 weft control-plane: admin token accepted\r\u001b[2K\u001b[1A";
  const out = logSafe(forged);
  assert.equal(out, "bad route\\n2026-01-01 weft control-plane: admin token accepted\\r\\u001b[2K\\u001b[1A");
  assert.ok(![..."\n\r\u001b"].some((c) => out.includes(c)));
  assert.equal(logSafe("a\u202eb\u2028c\u0085d\u0000"), "a\\u202eb\\u2028c\\u0085d\\u0000");
  // A literal backslash is escaped too, so "\\n" in the input cannot pass for an escaped newline.
  assert.equal(logSafe("C:\\new"), "C:\\\\new");
  // Printable text, including non-ASCII, is untouched.
  assert.equal(logSafe("café → ok: 名前 \t"), "café → ok: 名前 \\t");
  assert.equal(logSafe(new Error("boom\nx")), "boom\\nx");
  assert.equal(logSafe(42), "42");
});

test("logSafe: long text is cut and says how much was left out", () => {
  const out = logSafe("x".repeat(5000), 100);
  assert.equal(out, `${"x".repeat(100)}…(4900 more characters)`);
});
