import assert from "node:assert/strict";
import { test } from "node:test";
import { modifyHeaders } from "./header-list.ts";

test("header modifier: set replaces every value, add appends, remove drops; the protected prefix is kept", () => {
  const list = ["host", "a", "X-Env", "prod", "accept", "1", "x-env", "other", "x-drop", "y"];
  modifyHeaders(
    list,
    {
      set: [{ name: "x-env", value: "canary" }],
      add: [{ name: "accept", value: "2" }],
      remove: ["x-drop", "host"],
    },
    2,
  );
  assert.deepEqual(list, ["host", "a", "accept", "1", "x-env", "canary", "accept", "2"]);
});
