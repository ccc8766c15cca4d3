import { test } from "node:test";
import assert from "node:assert/strict";
import { missingRuntimeFlags, NODE_RUNTIME_FLAGS } from "./runtime-flags.js";

test("missingRuntimeFlags: none missing when the flags are given, whatever their value or spelling", () => {
  assert.deepEqual(missingRuntimeFlags([...NODE_RUNTIME_FLAGS]), []);
  assert.deepEqual(missingRuntimeFlags(["--enable-source-maps", "--initial_old_space_size=512"]), []);
});

test("missingRuntimeFlags: names what a plain `node` start lacks", () => {
  assert.deepEqual(missingRuntimeFlags([]), [...NODE_RUNTIME_FLAGS]);
  assert.deepEqual(missingRuntimeFlags(["--enable-source-maps", "--max-old-space-size=4096"]), [...NODE_RUNTIME_FLAGS]);
});
