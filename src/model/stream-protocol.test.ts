import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeMessage, LineDecoder, MessageTooLargeError } from "./stream-protocol.ts";

test("LineDecoder: messages split anywhere, several per chunk, multi-byte characters across chunks", () => {
  const text =
    encodeMessage({ type: "error", code: "a", message: "héllo ✓" }) + "\n" + encodeMessage({ type: "bye" });
  const bytes = Buffer.from(text, "utf8");
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new LineDecoder(1024);
    const got: unknown[] = [];
    d.push(bytes.subarray(0, cut), (m) => got.push(m));
    d.push(bytes.subarray(cut), (m) => got.push(m));
    assert.deepEqual(
      got,
      [{ type: "error", code: "a", message: "héllo ✓" }, { type: "bye" }],
      `cut at ${cut}`,
    );
    assert.equal(d.buffered, 0);
  }
});

test("LineDecoder: a line longer than the limit throws as soon as the limit is passed, holding no more", () => {
  const d = new LineDecoder(100);
  const chunk = Buffer.alloc(40, "x");
  d.push(chunk, () => {});
  d.push(chunk, () => {});
  assert.equal(d.buffered, 80);
  assert.throws(() => d.push(chunk, () => {}), MessageTooLargeError);

  // Also when the over-long line ends inside the chunk that carries it.
  const e = new LineDecoder(100);
  assert.throws(
    () => e.push(Buffer.from("y".repeat(101) + "\n"), () => {}),
    /exceeds the limit of 100 bytes/,
  );
  // Exactly at the limit is fine; the limit counts bytes, not characters.
  const f = new LineDecoder(10);
  const got: unknown[] = [];
  f.push(Buffer.from(`"${"é".repeat(4)}"\n`), (m) => got.push(m));
  assert.deepEqual(got, ["éééé"]);
  assert.throws(
    () => new LineDecoder(10).push(Buffer.from(`"${"é".repeat(5)}"\n`), () => {}),
    MessageTooLargeError,
  );
});

test("LineDecoder: complete lines in a big chunk do not count against the limit", () => {
  const d = new LineDecoder(64);
  const lines = Array.from({ length: 1000 }, (_, i) =>
    encodeMessage({ type: "ack", nonce: i, version: "v" }),
  );
  let n = 0;
  d.push(Buffer.from(lines.join("")), () => n++);
  assert.equal(n, 1000);
});
