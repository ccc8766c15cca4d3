import { test } from "node:test";
import assert from "node:assert/strict";
import { Harness, bytes } from "./testing/harness.js";

test("three nodes elect a leader and commit a proposal", () => {
  const h = new Harness([1, 2, 3]);
  h.elect(1);
  assert.equal(h.get(1).node.status().role, "leader");
  const r = h.get(1).node.propose(bytes("hello"));
  assert.equal(r.ok, true);
  h.stabilize();
  for (const id of [1, 2, 3]) assert.deepEqual(h.appliedData(id), ["hello"]);
});
