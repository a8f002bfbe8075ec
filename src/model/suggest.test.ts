import { test } from "node:test";
import assert from "node:assert/strict";
import { didYouMean, editDistance, suggest } from "./suggest.ts";

test("edit distance counts insertions, deletions, substitutions and swaps", () => {
  assert.equal(editDistance("rules", "rules"), 0);
  assert.equal(editDistance("rulez", "rules"), 1);
  assert.equal(editDistance("rule", "rules"), 1);
  assert.equal(editDistance("rlues", "rules"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
});

test("suggests the closest candidate when it is close enough", () => {
  const fields = ["parentRefs", "hostnames", "rules"];
  assert.equal(suggest("rulez", fields), "rules");
  assert.equal(suggest("parentRef", fields), "parentRefs");
  assert.equal(suggest("hostname", fields), "hostnames");
  assert.equal(suggest("ParentRefs", fields), "parentRefs");
});

test("suggests nothing for unrelated names", () => {
  assert.equal(suggest("timeout", ["parentRefs", "hostnames", "rules"]), undefined);
  assert.equal(suggest("x", ["name", "port"]), undefined);
  assert.equal(didYouMean("zzz", ["rules"]), "");
  assert.equal(didYouMean("backendRef", ["backendRefs"]), '; did you mean "backendRefs"?');
});
