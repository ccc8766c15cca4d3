import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../lib/assert.js";
import { entrySizeBytes, type ConfState, type Entry, type Snapshot } from "./messages.js";
import { LogCompactedError, MemoryStorage, bootstrapSnapshot } from "./storage.js";
import { bytes, storageAtZero } from "./testing/harness.js";
import { entriesOf, storedLog } from "./testing/script-kit.js";

const CONF: ConfState = { voters: [1, 2, 3], learners: [] };

function snapshot(index: number, term: number, confState: ConfState = CONF, data = "state"): Snapshot {
  return { metadata: { index, term, confState }, data: bytes(data) };
}

/**
 * etcd's storage fixture: the log holds (3,t3) (4,t4) (5,t5), where (3,t3) is the compaction point
 * (the last entry of a snapshot), so firstIndex = 4 and lastIndex = 5.
 */
function fixture(): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot(snapshot(3, 3));
  s.append(entriesOf(4, [4, 5]));
  return s;
}

/** (index, term) pairs including the compaction point, like etcd's `ents` with its dummy entry. */
function logWithDummy(s: MemoryStorage): [number, number][] {
  const first = s.firstIndex();
  return [[first - 1, s.term(first - 1)], ...storedLog(s).map((e): [number, number] => [e.index, e.term])];
}

test("a bootstrapped storage is empty after a membership snapshot at index 1, term 1, with that index committed", () => {
  const s = MemoryStorage.bootstrap([1, 2, 3], [4]);
  assert.equal(s.firstIndex(), 2, "index 1 is compacted: a joiner must get a snapshot first");
  assert.equal(s.lastIndex(), 1);
  assert.equal(s.term(1), 1);
  assert.throws(() => s.term(0), LogCompactedError);
  assert.throws(() => s.entries(1, 2, Infinity), LogCompactedError);
  assert.deepEqual(s.initialState().confState, { voters: [1, 2, 3], learners: [4] });
  assert.deepEqual(s.initialState().hardState, { term: 1, vote: 0, commit: 1 });
  assert.deepEqual(s.snapshot().metadata, { index: 1, term: 1, confState: { voters: [1, 2, 3], learners: [4] } });
  assert.deepEqual(s.snapshot(), bootstrapSnapshot([1, 2, 3], [4]));
});

test("storageAtZero (testing only): an empty log from index 1 with a known membership, until a real snapshot replaces it", () => {
  const s = storageAtZero([1, 2, 3], [4]);
  assert.equal(s.firstIndex(), 1);
  assert.equal(s.lastIndex(), 0);
  assert.equal(s.term(0), 0);
  assert.deepEqual(s.initialState(), { hardState: { term: 0, vote: 0, commit: 0 }, confState: { voters: [1, 2, 3], learners: [4] } });
  assert.deepEqual(s.snapshot().metadata, { index: 0, term: 0, confState: { voters: [1, 2, 3], learners: [4] } });
  s.append(entriesOf(1, [1, 2]));
  assert.deepEqual(logWithDummy(s), [[0, 0], [1, 1], [2, 2]]);
  assert.equal(s.applySnapshot(snapshot(5, 3)), true);
  assert.deepEqual(s.initialState().confState, CONF, "the applied snapshot's membership, not the initial one");
  assert.deepEqual(s.snapshot().metadata.confState, CONF);
});

test("setHardState is what initialState returns, as a copy", () => {
  const s = MemoryStorage.bootstrap([1]);
  const hs = { term: 3, vote: 1, commit: 0 };
  s.setHardState(hs);
  hs.term = 99;
  assert.deepEqual(s.initialState().hardState, { term: 3, vote: 1, commit: 0 });
});

test("term: compacted below the compaction point, known from it to the last index", () => {
  const s = fixture();
  assert.throws(() => s.term(2), LogCompactedError);
  assert.equal(s.term(3), 3, "the compaction point keeps its term");
  assert.equal(s.term(4), 4);
  assert.equal(s.term(5), 5);
  assert.throws(() => s.term(6), AssertionError, "beyond the last index is a programmer error");
});

test("firstIndex and lastIndex", () => {
  const s = fixture();
  assert.equal(s.firstIndex(), 4);
  assert.equal(s.lastIndex(), 5);
  s.append(entriesOf(6, [5]));
  assert.equal(s.lastIndex(), 6);
  s.compact(4);
  assert.equal(s.firstIndex(), 5);
  assert.equal(s.lastIndex(), 6);
});

test("entries: compacted ranges throw; byte limits cut the range but always return one entry", () => {
  const s = fixture();
  const e4 = s.entries(4, 5, Infinity)[0]!;
  const e5 = s.entries(5, 6, Infinity)[0]!;
  const size = entrySizeBytes(e4);
  assert.equal(entrySizeBytes(e5), size);
  assert.throws(() => s.entries(2, 6, Infinity), LogCompactedError);
  assert.throws(() => s.entries(3, 4, Infinity), LogCompactedError, "the compaction point has no entry");
  const idx = (es: Entry[]) => es.map((e) => e.index);
  assert.deepEqual(idx(s.entries(4, 5, Infinity)), [4]);
  assert.deepEqual(idx(s.entries(4, 6, Infinity)), [4, 5]);
  assert.deepEqual(idx(s.entries(4, 6, 0)), [4], "at least one entry even with no budget");
  assert.deepEqual(idx(s.entries(4, 6, size)), [4]);
  assert.deepEqual(idx(s.entries(4, 6, 2 * size - 1)), [4]);
  assert.deepEqual(idx(s.entries(4, 6, 2 * size)), [4, 5], "the limit is inclusive");
  assert.throws(() => s.entries(4, 7, Infinity), AssertionError, "hi beyond lastIndex + 1");
});

test("compact discards up to the index and keeps its term as the new compaction point", () => {
  const cases: { compact: number; wantDummy: [number, number]; wantLen: number }[] = [
    { compact: 2, wantDummy: [3, 3], wantLen: 3 }, // already compacted: no-op
    { compact: 3, wantDummy: [3, 3], wantLen: 3 }, // the compaction point itself: no-op
    { compact: 4, wantDummy: [4, 4], wantLen: 2 },
    { compact: 5, wantDummy: [5, 5], wantLen: 1 },
  ];
  for (const c of cases) {
    const s = fixture();
    s.compact(c.compact);
    const log = logWithDummy(s);
    assert.deepEqual(log[0], c.wantDummy, `compact(${c.compact})`);
    assert.equal(log.length, c.wantLen, `compact(${c.compact})`);
  }
  assert.throws(() => fixture().compact(6), AssertionError, "cannot compact beyond the last index");
});

test("createSnapshot records (index, term, membership, data) without compacting", () => {
  const s = fixture();
  const cs: ConfState = { voters: [1, 2], learners: [7] };
  const snap = s.createSnapshot(4, cs, bytes("sm@4"));
  assert.deepEqual(snap.metadata, { index: 4, term: 4, confState: cs });
  assert.deepEqual(s.snapshot(), snap);
  assert.equal(s.firstIndex(), 4, "not compacted");
  assert.equal(s.createSnapshot(5, cs, bytes("sm@5")).metadata.term, 5);
  assert.throws(() => s.createSnapshot(5, cs, bytes("again")), AssertionError, "not after the latest snapshot");
  assert.throws(() => fixture().createSnapshot(3, cs, bytes("")), AssertionError, "the compaction point is not after snapshot 3");
  assert.throws(() => fixture().createSnapshot(6, cs, bytes("")), AssertionError, "beyond the last index");
});

test("append replaces a conflicting suffix and skips what is at or below the compaction point (etcd's table)", () => {
  //  stored (3,3)(4,4)(5,5) — 3 is the compaction point
  const cases: { append: [number, number][]; want: [number, number][] | "throws" }[] = [
    { append: [[1, 1], [2, 2]], want: [[3, 3], [4, 4], [5, 5]] }, // entirely compacted: ignored
    { append: [[3, 3], [4, 4], [5, 5]], want: [[3, 3], [4, 4], [5, 5]] },
    { append: [[3, 3], [4, 6], [5, 6]], want: [[3, 3], [4, 6], [5, 6]] }, // conflict at 4: replaced
    { append: [[3, 3], [4, 4], [5, 5], [6, 5]], want: [[3, 3], [4, 4], [5, 5], [6, 5]] },
    { append: [[2, 3], [3, 3], [4, 5]], want: [[3, 3], [4, 5]] }, // truncates incoming and stored
    { append: [[4, 5]], want: [[3, 3], [4, 5]] }, // truncates the stored suffix from 4
    { append: [[6, 5]], want: [[3, 3], [4, 4], [5, 5], [6, 5]] }, // directly after the last
    { append: [[7, 5]], want: "throws" }, // a gap: a missing entry is a programmer error
  ];
  for (const c of cases) {
    const s = fixture();
    const ents = c.append.map(([index, term]) => ({ index, term, type: "normal" as const, data: bytes(`x${index}`) }));
    const what = `append ${JSON.stringify(c.append)}`;
    if (c.want === "throws") {
      assert.throws(() => s.append(ents), AssertionError, what);
      assert.deepEqual(logWithDummy(s), [[3, 3], [4, 4], [5, 5]], "unchanged after the failed append");
    } else {
      s.append(ents);
      assert.deepEqual(logWithDummy(s), c.want, what);
    }
  }
});

test("applySnapshot replaces the whole state and ignores snapshots that are not newer", () => {
  const s = fixture();
  assert.equal(s.applySnapshot(snapshot(3, 3)), false, "same index");
  assert.equal(s.applySnapshot(snapshot(2, 2)), false, "older");
  assert.equal(s.lastIndex(), 5, "ignored snapshots change nothing");

  const cs: ConfState = { voters: [1, 2, 3, 4], learners: [5] };
  assert.equal(s.applySnapshot(snapshot(10, 7, cs, "sm@10")), true);
  assert.equal(s.firstIndex(), 11);
  assert.equal(s.lastIndex(), 10);
  assert.equal(s.term(10), 7);
  assert.throws(() => s.term(9), LogCompactedError);
  assert.deepEqual(s.initialState().confState, cs);
  assert.deepEqual(s.snapshot().data, bytes("sm@10"));
  s.append(entriesOf(11, [7, 8]));
  assert.deepEqual(logWithDummy(s), [[10, 7], [11, 7], [12, 8]]);
});

test("applySnapshot also replaces entries beyond the snapshot (they may conflict with it)", () => {
  const s = fixture();
  assert.equal(s.applySnapshot(snapshot(4, 9)), true);
  assert.equal(s.lastIndex(), 4);
  assert.equal(s.term(4), 9);
});
