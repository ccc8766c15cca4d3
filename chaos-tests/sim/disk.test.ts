/**
 * The simulated disk: unsynced writes are read back at once but lost by a crash; a synced write
 * makes everything before it durable; copies keep entries below a lagging snapshot.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LogIndex, Term } from "../../src/lib/ids.js";
import { MemoryStorage, type Entry } from "../../src/raft/index.js";
import { copyLog, SimDisk } from "./disk.js";
import { encodeProposal } from "./state-machine.js";

function entry(index: LogIndex, term: Term, text = ""): Entry {
  return { index, term, type: "normal", data: encodeProposal(text) };
}

const NONE = { snapshot: undefined, entries: [], hardState: undefined };

test("disk: an unsynced hard state is read back at once and lost by a crash", () => {
  const disk = new SimDisk(MemoryStorage.bootstrap([1, 2, 3]));
  disk.write({ ...NONE, entries: [entry(2, 2)], hardState: { term: 2, vote: 1, commit: 1 } }, true);
  disk.write({ ...NONE, hardState: { term: 3, vote: 2, commit: 2 } }, false);
  assert.deepEqual(disk.storage.initialState().hardState, { term: 3, vote: 2, commit: 2 });
  assert.deepEqual(disk.durableHardState, { term: 2, vote: 1, commit: 1 });
  assert.equal(disk.buffered, 1);
  assert.equal(disk.crash(), 1);
  assert.deepEqual(disk.storage.initialState().hardState, { term: 2, vote: 1, commit: 1 });
  assert.equal(disk.storage.lastIndex(), 2);
  assert.equal(disk.crash(), 0);
});

test("disk: a synced write makes the unsynced writes before it durable", () => {
  const disk = new SimDisk(MemoryStorage.bootstrap([1, 2, 3]));
  disk.write({ ...NONE, entries: [entry(2, 2, "a")] }, false);
  assert.equal(disk.logBuffered, true);
  assert.equal(disk.durablyHas(2, 2), false);
  assert.equal(disk.acknowledgeable(2), false);
  disk.write({ ...NONE, hardState: { term: 2, vote: 1, commit: 2 } }, true);
  assert.equal(disk.logBuffered, false);
  assert.equal(disk.durablyHas(2, 2), true);
  assert.equal(disk.acknowledgeable(2), true);
  assert.equal(disk.crash(), 0);
  assert.equal(disk.storage.lastIndex(), 2);
});

test("disk: a crash loses unsynced entries, including a truncation of durable ones", () => {
  const disk = new SimDisk(MemoryStorage.bootstrap([1, 2, 3]));
  disk.write({ ...NONE, entries: [entry(2, 2, "a"), entry(3, 2, "b")] }, true);
  disk.write({ ...NONE, entries: [entry(3, 3, "c"), entry(4, 3, "d")] }, false);
  assert.equal(disk.storage.term(3), 3);
  assert.equal(disk.durablyHas(3, 2), true);
  assert.equal(disk.durablyHas(3, 3), false);
  assert.equal(disk.acknowledgeable(3), false); // the core reads term 3 there; the disk holds term 2
  assert.equal(disk.acknowledgeable(2), true);
  disk.crash();
  assert.equal(disk.storage.lastIndex(), 3);
  assert.equal(disk.storage.term(3), 2);
});

test("disk: a copy keeps the entries between a lagging compaction point and the snapshot", () => {
  const s = MemoryStorage.bootstrap([1, 2, 3]);
  s.append([entry(2, 2, "a"), entry(3, 2, "b"), entry(4, 2, "c"), entry(5, 3, "d")]);
  s.setHardState({ term: 3, vote: 1, commit: 5 });
  s.createSnapshot(4, { voters: [1, 2, 3], learners: [] }, encodeProposal("state"));
  s.compact(2);
  const c = copyLog(s);
  assert.equal(c.firstIndex(), s.firstIndex());
  assert.equal(c.lastIndex(), s.lastIndex());
  assert.deepEqual(c.snapshot().metadata, s.snapshot().metadata);
  assert.deepEqual(c.entries(3, 6, Number.MAX_SAFE_INTEGER), s.entries(3, 6, Number.MAX_SAFE_INTEGER));
  assert.deepEqual(c.initialState(), s.initialState());
  assert.equal(copyLog(s, 4).lastIndex(), 4);
});
