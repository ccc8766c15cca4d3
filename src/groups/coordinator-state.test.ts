/**
 * The replicated group state: offset commits never go backwards (unless reset on purpose, or the
 * topic was re-created), member records replace each other, snapshots round-trip, conf changes
 * are tracked for compaction, and malformed entries are refused loudly.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { bootstrapSnapshot, encodeConfChange, type Entry } from "../raft/index.js";
import { GroupCoordinatorState, encodeCoordinatorCommand, type CoordinatorCommand, type RecordedMember } from "./coordinator-state.js";

let nextIndex = 2;
function entry(cmd: CoordinatorCommand | Uint8Array): Entry {
  const data = cmd instanceof Uint8Array ? cmd : encodeCoordinatorCommand(cmd);
  return { index: nextIndex++, term: 1, type: "normal", data };
}

function fresh(): GroupCoordinatorState {
  const s = new GroupCoordinatorState(1000);
  s.restore(bootstrapSnapshot([1, 2, 3], []));
  nextIndex = 2;
  return s;
}

const commit = (group: string, offsets: [string, number, number, number][], atMs = 1): CoordinatorCommand => ({ op: "commit", group, atMs, offsets });
const reset = (group: string, offsets: [string, number, number, number][], atMs = 1): CoordinatorCommand => ({ op: "reset", group, atMs, offsets });

test("a commit sets offsets per group and partition; a lower commit is ignored; a reset may go back", () => {
  const s = fresh();
  s.apply([entry(commit("g", [["t", 0, 10, 7], ["t", 1, 5, 7]])), entry(commit("h", [["t", 0, 3, 7]]))]);
  assert.equal(s.committed("g", { topic: "t", partition: 0 })?.offset, 10);
  assert.equal(s.committed("g", { topic: "t", partition: 1 })?.offset, 5);
  assert.equal(s.committed("h", { topic: "t", partition: 0 })?.offset, 3);
  s.apply([entry(commit("g", [["t", 0, 4, 7], ["t", 1, 6, 7]], 2))]);
  assert.equal(s.committed("g", { topic: "t", partition: 0 })?.offset, 10, "never backwards");
  assert.equal(s.committed("g", { topic: "t", partition: 0 })?.atMs, 1, "an ignored commit changes nothing");
  assert.equal(s.committed("g", { topic: "t", partition: 1 })?.offset, 6);
  s.apply([entry(reset("g", [["t", 0, 0, 7]], 3))]);
  assert.equal(s.committed("g", { topic: "t", partition: 0 })?.offset, 0, "an explicit reset goes back");
  s.apply([entry(commit("g", [["t", 0, 2, 8]]))]);
  assert.deepEqual(s.committed("g", { topic: "t", partition: 0 }), { offset: 2, topicId: 8, atMs: 1 }, "a re-created topic (new id) starts over");
  assert.deepEqual(s.groupNames(), ["g", "h"]);
});

test("property: without resets, every committed offset is the maximum committed so far for its topic id", () => {
  const cmdArb = fc.record({ group: fc.constantFrom("a", "b"), partition: fc.integer({ min: 0, max: 2 }), offset: fc.integer({ min: 0, max: 50 }) });
  fc.assert(
    fc.property(fc.array(cmdArb, { maxLength: 60 }), (cmds) => {
      const s = fresh();
      const max = new Map<string, number>();
      for (const c of cmds) {
        s.apply([entry(commit(c.group, [["t", c.partition, c.offset, 1]]))]);
        const key = `${c.group}/${c.partition}`;
        max.set(key, Math.max(max.get(key) ?? -1, c.offset));
        assert.equal(s.committed(c.group, { topic: "t", partition: c.partition })?.offset, max.get(key));
      }
    }),
    { numRuns: 200 },
  );
});

test("member records replace the group's previous ones; an empty group without offsets disappears", () => {
  const s = fresh();
  const m = (id: string, ...owned: number[]): RecordedMember => ({ id, clientId: "c", topics: ["t"], sessionTimeoutMs: 5000, owned: owned.map((partition) => ({ topic: "t", partition })) });
  s.apply([entry({ op: "members", group: "g", members: [m("a", 0, 1), m("b", 2)] })]);
  assert.deepEqual(s.membersOf("g").map((x) => x.id), ["a", "b"]);
  s.apply([entry({ op: "members", group: "g", members: [m("b", 0, 1, 2)] })]);
  assert.deepEqual(s.membersOf("g"), [m("b", 0, 1, 2)]);
  s.apply([entry({ op: "members", group: "g", members: [] })]);
  assert.deepEqual(s.groupNames(), []);
  s.apply([entry(commit("g", [["t", 0, 1, 1]])), entry({ op: "members", group: "g", members: [] })]);
  assert.deepEqual(s.groupNames(), ["g"], "offsets keep the group");
});

test("a snapshot round-trips offsets, topic ids, times and members", () => {
  const s = fresh();
  const member: RecordedMember = { id: "a", clientId: "c", topics: ["t", "u"], sessionTimeoutMs: 3000, owned: [{ topic: "u", partition: 4 }] };
  s.apply([entry(commit("g", [["t", 0, 10, 7], ["u", 4, 99, 9]], 1234)), entry({ op: "members", group: "g", members: [member] }), entry(commit("h", [["t", 3, 1, 7]]))]);
  const copy = new GroupCoordinatorState(1000);
  copy.restore({ metadata: { index: s.appliedIndex, term: 1, confState: s.confState }, data: s.snapshotData() });
  assert.equal(copy.appliedIndex, s.appliedIndex);
  assert.deepEqual(copy.groupNames(), ["g", "h"]);
  assert.deepEqual([...copy.offsetsOf("g")], [...s.offsetsOf("g")]);
  assert.deepEqual(copy.committed("g", { topic: "u", partition: 4 }), { offset: 99, topicId: 9, atMs: 1234 });
  assert.deepEqual(copy.membersOf("g"), [member]);
  assert.deepEqual(copy.snapshotData(), s.snapshotData());
  // And it still refuses to go backwards after the restore.
  copy.apply([entry(commit("g", [["t", 0, 3, 7]]))]);
  assert.equal(copy.committed("g", { topic: "t", partition: 0 })?.offset, 10);
});

test("conf changes, no-ops and unknown commands are applied without effect on offsets; conf state is tracked", () => {
  const s = fresh();
  s.apply([
    { index: nextIndex++, term: 1, type: "normal", data: new Uint8Array() },
    { index: nextIndex++, term: 1, type: "conf", data: encodeConfChange({ type: "addLearner", nodeId: 4 }) },
    entry(new TextEncoder().encode(JSON.stringify({ op: "fromTheFuture", group: "g" }))),
  ]);
  assert.deepEqual(s.confState, { voters: [1, 2, 3], learners: [4] });
  assert.deepEqual(s.groupNames(), []);
  assert.equal(s.appliedIndex, nextIndex - 1);
});

test("malformed entries and snapshots are refused, naming the partition and index", () => {
  const s = fresh();
  assert.throws(() => s.apply([entry(new TextEncoder().encode("not json"))]), /group offsets partition 1000: entry \d+ is not a coordinator command/);
  assert.throws(() => s.apply([entry(new TextEncoder().encode(JSON.stringify({ op: "commit", group: "g", offsets: [["t", 0, -1, 1]] })))]), /malformed offsets/);
  assert.throws(
    () => s.restore({ metadata: { index: 9, term: 1, confState: { voters: [1], learners: [] } }, data: new TextEncoder().encode("{") }),
    /corrupt snapshot at index 9/,
  );
});
