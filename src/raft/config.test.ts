import { test } from "node:test";
import assert from "node:assert/strict";
import { SeededRandom } from "../lib/random.js";
import { resolveConfig, type RaftConfig } from "./config.js";
import { RawNode } from "./raw-node.js";
import { MemoryStorage } from "./storage.js";

function base(overrides: Partial<RaftConfig> = {}): RaftConfig {
  return { id: 1, storage: MemoryStorage.bootstrap([1]), random: new SeededRandom(1), ...overrides };
}

/** Asserts that `overrides` is rejected with a RangeError whose message names `option`. */
function rejects(overrides: Partial<RaftConfig>, option: string): void {
  assert.throws(
    () => resolveConfig(base(overrides)),
    (e: unknown) => {
      assert.ok(e instanceof RangeError, `expected a RangeError for ${JSON.stringify(overrides)}, got ${String(e)}`);
      assert.match(e.message, new RegExp(`\\b${option}\\b`), `the message must name ${option}`);
      return true;
    },
  );
}

test("defaults are filled in and are mutually valid", () => {
  const c = resolveConfig(base());
  assert.equal(c.electionTicks, 10);
  assert.equal(c.heartbeatTicks, 1);
  assert.equal(c.maxMsgBytes, 1024 * 1024);
  assert.equal(c.maxInflightMsgs, 256);
  assert.equal(c.maxInflightBytes, 32 * 1024 * 1024);
  assert.equal(c.maxUncommittedBytes, 64 * 1024 * 1024);
  assert.equal(c.maxCommittedBytesPerReady, 4 * 1024 * 1024);
  assert.equal(c.preVote, true);
  assert.equal(c.checkQuorum, true);
  assert.equal(c.quiesce, false);
  assert.equal(c.applied, undefined);
});

test("every size and tick option must be a positive integer; the error names it", () => {
  const options = ["electionTicks", "heartbeatTicks", "maxMsgBytes", "maxInflightMsgs", "maxInflightBytes", "maxUncommittedBytes", "maxCommittedBytesPerReady"] as const;
  for (const option of options) {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      // Keep the other relations valid so that the option itself is what fails.
      const extra: Partial<RaftConfig> = option === "heartbeatTicks" ? { electionTicks: 10 } : option === "maxMsgBytes" ? { maxInflightBytes: 1 << 30 } : {};
      rejects({ ...extra, [option]: bad }, option);
    }
  }
});

test("id must be a positive integer (0 means 'nobody')", () => {
  rejects({ id: 0 }, "id");
  rejects({ id: -3 }, "id");
  rejects({ id: 2.5 }, "id");
});

test("heartbeatTicks must be less than electionTicks", () => {
  rejects({ electionTicks: 5, heartbeatTicks: 5 }, "heartbeatTicks");
  rejects({ electionTicks: 5, heartbeatTicks: 9 }, "heartbeatTicks");
  rejects({ electionTicks: 1 }, "heartbeatTicks"); // default heartbeatTicks 1 is not < 1
  assert.doesNotThrow(() => resolveConfig(base({ electionTicks: 2, heartbeatTicks: 1 })));
});

test("maxInflightBytes must be at least maxMsgBytes (else one full message could never be in flight)", () => {
  rejects({ maxMsgBytes: 1000, maxInflightBytes: 999 }, "maxInflightBytes");
  rejects({ maxInflightBytes: 1000 }, "maxInflightBytes"); // against the default maxMsgBytes of 1 MiB
  assert.doesNotThrow(() => resolveConfig(base({ maxMsgBytes: 1000, maxInflightBytes: 1000 })));
});

test("a RawNode validates its configuration at construction", () => {
  assert.throws(() => new RawNode(base({ electionTicks: 3, heartbeatTicks: 3 })), /heartbeatTicks/);
  assert.throws(() => new RawNode(base({ maxInflightMsgs: 0 })), /maxInflightMsgs/);
});
