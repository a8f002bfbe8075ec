import { test } from "node:test";
import assert from "node:assert/strict";
import { formatPath, parsePath } from "./field-path.ts";

test("formats nested fields and indexes the way kubectl prints them", () => {
  assert.equal(
    formatPath(["spec", "rules", 0, "backendRefs", 1, "weight"]),
    "spec.rules[0].backendRefs[1].weight",
  );
  assert.equal(formatPath([]), "");
  assert.equal(formatPath([2, "kind"]), "[2].kind");
});

test("quotes keys that are not identifiers, such as label keys", () => {
  assert.equal(formatPath(["metadata", "labels", "weft.dev/service"]), 'metadata.labels["weft.dev/service"]');
  assert.equal(formatPath(["metadata", "labels", 'a]b"c']), 'metadata.labels["a]b\\"c"]');
});

test("parsePath inverts formatPath", () => {
  for (const path of [
    ["spec", "rules", 0, "backendRefs", 1, "weight"],
    ["metadata", "labels", "weft.dev/service"],
    ["metadata", "labels", 'a]b"c', "x"],
    ["items", 3, "spec"],
    [],
  ]) {
    assert.deepEqual(parsePath(formatPath(path)), path);
  }
});

test("parsePath rejects malformed paths loudly (they come from code)", () => {
  assert.throws(() => parsePath("spec.rules[0"), /unclosed/);
  assert.throws(() => parsePath("spec[x]"), /bad field path/);
  assert.throws(() => parsePath(".spec"), /bad field path/);
});
