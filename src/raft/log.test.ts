import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../lib/assert.js";
import { Unstable } from "./log-unstable.js";
import { RaftLog } from "./log.js";
import { entrySizeBytes, type Entry, type Snapshot } from "./messages.js";
import { LogCompactedError, MemoryStorage } from "./storage.js";
import { bytes } from "./testing/harness.js";
import { entriesOf } from "./testing/script-kit.js";

const BIG = Number.MAX_SAFE_INTEGER;

/**
 * A RaftLog whose storage holds `stableTerms` from index 1 and whose unstable part holds `unstableTerms` after them.
 * The storage starts empty (compaction point 0), not bootstrapped (whose index 1 is a snapshot): these are etcd's tables.
 */
function raftLog(stableTerms: number[], unstableTerms: number[] = [], committed = 0): RaftLog {
  const s = new MemoryStorage();
  s.append(entriesOf(1, stableTerms));
  const log = new RaftLog(s, BIG);
  if (unstableTerms.length > 0) log.append(entriesOf(stableTerms.length + 1, unstableTerms));
  log.commitTo(committed);
  return log;
}

function ents(pairs: [number, number][]): Entry[] {
  return pairs.map(([index, term]) => ({ index, term, type: "normal" as const, data: bytes(`new${index}`) }));
}

function terms(log: RaftLog): number[] {
  const out: number[] = [];
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(log.term(i));
  return out;
}

function snap(index: number, term: number): Snapshot {
  return { metadata: { index, term, confState: { voters: [1, 2, 3], learners: [] } }, data: bytes(`sm@${index}`) };
}

// ------------------------------------------------------------------ findConflict / maybeAppend

test("findConflict: the first entry whose term differs, or the first new one, or 0 (etcd's table)", () => {
  // ours: (1,1) (2,2) (3,3)
  const cases: [[number, number][], number][] = [
    [[], 0],
    [[[1, 1], [2, 2], [3, 3]], 0], // all present
    [[[2, 2], [3, 3]], 0],
    [[[3, 3]], 0],
    [[[1, 1], [2, 2], [3, 3], [4, 4], [5, 4]], 4], // no conflict, new entries from 4
    [[[2, 2], [3, 3], [4, 4], [5, 4]], 4],
    [[[3, 3], [4, 4], [5, 4]], 4],
    [[[4, 4], [5, 4]], 4],
    [[[1, 4], [2, 4]], 1], // conflicts with existing entries
    [[[2, 1], [3, 4], [4, 4]], 2],
    [[[3, 1], [4, 2], [5, 4], [6, 4]], 3],
  ];
  for (const inStorage of [true, false]) {
    for (const [incoming, want] of cases) {
      const log = inStorage ? raftLog([1, 2, 3]) : raftLog([], [1, 2, 3]);
      assert.equal(log.findConflict(ents(incoming)), want, `${JSON.stringify(incoming)} (entries ${inStorage ? "stable" : "unstable"})`);
    }
  }
});

test("maybeAppend: matches at (index, logTerm), appends, truncates a conflicting suffix, commits min(commit, last new) (etcd's table)", () => {
  // ours: (1,1) (2,2) (3,3), committed 1
  type Case = { index: number; logTerm: number; commit: number; ents: [number, number][]; want: number | undefined; wantCommit: number; wantTerms?: number[] };
  const cases: Case[] = [
    // no match: the term at index differs, or index is beyond our log
    { index: 3, logTerm: 2, commit: 3, ents: [[4, 4]], want: undefined, wantCommit: 1 },
    { index: 4, logTerm: 4, commit: 3, ents: [[5, 4]], want: undefined, wantCommit: 1 },
    // match with the last entry, nothing new
    { index: 3, logTerm: 3, commit: 3, ents: [], want: 3, wantCommit: 3 },
    { index: 3, logTerm: 3, commit: 4, ents: [], want: 3, wantCommit: 3 }, // never beyond the last new entry
    { index: 3, logTerm: 3, commit: 2, ents: [], want: 3, wantCommit: 2 },
    { index: 3, logTerm: 3, commit: 0, ents: [], want: 3, wantCommit: 1 }, // commit never goes back
    { index: 2, logTerm: 2, commit: 3, ents: [], want: 2, wantCommit: 2 }, // the leader only vouches for 1..2
    // new entries
    { index: 3, logTerm: 3, commit: 3, ents: [[4, 4]], want: 4, wantCommit: 3, wantTerms: [1, 2, 3, 4] },
    { index: 3, logTerm: 3, commit: 4, ents: [[4, 4]], want: 4, wantCommit: 4 },
    { index: 3, logTerm: 3, commit: 5, ents: [[4, 4], [5, 4]], want: 5, wantCommit: 5, wantTerms: [1, 2, 3, 4, 4] },
    // entries we already have: nothing is truncated, even though the message is shorter than our log
    { index: 1, logTerm: 1, commit: 1, ents: [[2, 2]], want: 2, wantCommit: 1, wantTerms: [1, 2, 3] },
    // a conflicting uncommitted suffix is truncated and replaced
    { index: 2, logTerm: 2, commit: 3, ents: [[3, 4]], want: 3, wantCommit: 3, wantTerms: [1, 2, 4] },
    { index: 1, logTerm: 1, commit: 3, ents: [[2, 4]], want: 2, wantCommit: 2, wantTerms: [1, 4] },
    { index: 1, logTerm: 1, commit: 1, ents: [[2, 4], [3, 4], [4, 4]], want: 4, wantCommit: 1, wantTerms: [1, 4, 4, 4] },
  ];
  for (const inStorage of [true, false]) {
    for (const c of cases) {
      const log = inStorage ? raftLog([1, 2, 3], [], 1) : raftLog([], [1, 2, 3], 1);
      const what = `maybeAppend(${c.index}, ${c.logTerm}, ${c.commit}, ${JSON.stringify(c.ents)}) with ${inStorage ? "stable" : "unstable"} entries`;
      assert.equal(log.maybeAppend(c.index, c.logTerm, c.commit, ents(c.ents)), c.want, what);
      assert.equal(log.committed, c.wantCommit, what);
      if (c.wantTerms !== undefined) assert.deepEqual(terms(log), c.wantTerms, what);
      if (c.want === undefined) assert.deepEqual(terms(log), [1, 2, 3], `${what}: a mismatch changes nothing`);
    }
  }
});

test("maybeAppend replaces a stored suffix through the unstable part; the new entries are what the log reads", () => {
  const log = raftLog([1, 1, 2, 2, 2]); // 1..5 persisted
  assert.equal(log.maybeAppend(2, 1, 0, ents([[3, 3], [4, 3]])), 4);
  assert.equal(log.lastIndex(), 4, "the old entry 5 is gone from the log's view");
  assert.deepEqual(terms(log), [1, 1, 3, 3]);
  assert.equal(log.unstable.offset, 3, "the host will overwrite storage from index 3");
  assert.deepEqual(
    log.unstable.entries.map((e) => e.index),
    [3, 4],
  );
  assert.deepEqual(log.slice(1, 5, BIG).map((e) => e.term), [1, 1, 3, 3], "reads splice storage and the replacement");
});

test("maybeAppend never truncates a committed entry: a conflict there is an assertion failure", () => {
  const log = raftLog([1, 2, 3], [], 2);
  assert.throws(() => log.maybeAppend(1, 1, 3, ents([[2, 4]])), AssertionError);
  assert.deepEqual(terms(log), [1, 2, 3], "the log is unchanged");
  // A conflict just above the commit index is fine.
  assert.equal(log.maybeAppend(2, 2, 2, ents([[3, 4]])), 3);
  assert.deepEqual(terms(log), [1, 2, 4]);
});

test("append after the commit index only", () => {
  const log = raftLog([1, 1, 1], [], 2);
  assert.throws(() => log.append(ents([[2, 5]])), AssertionError);
  assert.equal(log.append(ents([[3, 5], [4, 5]])), 4);
  assert.equal(log.append([]), 4);
});

// ------------------------------------------------------------------ findConflictByTerm

test("findConflictByTerm: the last index <= index whose term is <= term (etcd's table)", () => {
  // Log from index 1:                       Log compacted up to 10 (term 3):
  //   idx   1 2 3 4 5                          idx  10 11 12 13 14 15
  //   term  2 2 5 5 5                          term  3  3  3  4  4  4   (10 is the snapshot)
  //
  //   (5, 6) → 5   all terms <= 6              (14, 9) → 14
  //   (5, 5) → 5                               (14, 4) → 14
  //   (5, 4) → 2   skip the whole term 5       (14, 3) → 12  skip the whole term 4
  //   (5, 2) → 2                               (14, 2) → 9   ran into the snapshot: compacted, term 0
  //   (5, 1) → 0   nothing matches             (11, 5) → 11
  //   (1, 2) → 1                               (10, 5) → 10  the snapshot's term is known
  //   (1, 1) → 0                               (10, 3) → 10
  //   (0, 0) → 0                               (10, 2) → 9
  //   (100, 2) → 100  beyond our log: term 0   ( 9, 2) → 9   ( 4, 2) → 4   (0, 0) → 0   (30, 3) → 30
  const fromOne = raftLog([2, 2, 5, 5, 5]);
  const cases1: [number, number, number, number][] = [
    // index, term → want index, want term
    [100, 2, 100, 0],
    [5, 6, 5, 5],
    [5, 5, 5, 5],
    [5, 4, 2, 2],
    [5, 2, 2, 2],
    [5, 1, 0, 0],
    [1, 2, 1, 2],
    [1, 1, 0, 0],
    [0, 0, 0, 0],
  ];
  for (const [index, term, wantIndex, wantTerm] of cases1) {
    assert.deepEqual(fromOne.findConflictByTerm(index, term), { index: wantIndex, term: wantTerm }, `log from 1: (${index}, ${term})`);
  }

  const s = new MemoryStorage();
  s.applySnapshot(snap(10, 3));
  s.append(entriesOf(11, [3, 3, 4, 4, 4]));
  const compacted = new RaftLog(s, BIG);
  const cases2: [number, number, number, number][] = [
    [30, 3, 30, 0],
    [14, 9, 14, 4],
    [14, 4, 14, 4],
    [14, 3, 12, 3],
    [14, 2, 9, 0],
    [11, 5, 11, 3],
    [10, 5, 10, 3],
    [10, 3, 10, 3],
    [10, 2, 9, 0],
    [9, 2, 9, 0],
    [4, 2, 4, 0],
    [0, 0, 0, 0],
  ];
  for (const [index, term, wantIndex, wantTerm] of cases2) {
    assert.deepEqual(compacted.findConflictByTerm(index, term), { index: wantIndex, term: wantTerm }, `compacted log: (${index}, ${term})`);
  }
});

test("findConflictByTerm: the example of log.ts (one round trip skips a whole term)", () => {
  //   idx   1 2 3 4 5 6 7 8 9
  //   ours  1 3 3 3 5 5 5 5 5     findConflictByTerm(9, 4) → (4, 3)
  const ours = raftLog([1, 3, 3, 3, 5, 5, 5, 5, 5]);
  assert.deepEqual(ours.findConflictByTerm(9, 4), { index: 4, term: 3 });
});

// ------------------------------------------------------------------ isUpToDate

test("isUpToDate: a later last term wins; with equal last terms the longer log wins (etcd's table)", () => {
  // ours ends at (3, t3)
  const log = raftLog([1, 2, 3]);
  const cases: [number, number, boolean][] = [
    // greater term: up to date whatever the length
    [2, 4, true],
    [3, 4, true],
    [4, 4, true],
    // smaller term: never
    [2, 2, false],
    [3, 2, false],
    [4, 2, false],
    // equal term: at least as long
    [2, 3, false],
    [3, 3, true],
    [4, 3, true],
  ];
  for (const [lastIndex, lastTerm, want] of cases) {
    assert.equal(log.isUpToDate(lastIndex, lastTerm), want, `isUpToDate(${lastIndex}, ${lastTerm})`);
  }
});

// ------------------------------------------------------------------ slice

test("slice reads across storage and the unstable part, bounded by bytes but always at least one entry", () => {
  // storage 1..5, unstable 6..8; every entry is 10 bytes of data (+24 bytes of overhead) = 34 bytes
  const s = new MemoryStorage();
  const data = () => new Uint8Array(10);
  s.append(entriesOf(1, [1, 1, 1, 1, 1], data));
  const log = new RaftLog(s, BIG);
  log.append(entriesOf(6, [2, 2, 2], data));
  const size = entrySizeBytes(log.slice(1, 2, BIG)[0]!);
  assert.equal(size, 34);
  assert.equal(log.unstable.offset, 6);

  const idx = (lo: number, hi: number, maxBytes: number) => log.slice(lo, hi, maxBytes).map((e) => e.index);
  assert.deepEqual(idx(4, 9, BIG), [4, 5, 6, 7, 8], "across the boundary");
  assert.deepEqual(idx(2, 4, BIG), [2, 3], "storage only");
  assert.deepEqual(idx(6, 8, BIG), [6, 7], "unstable only");
  assert.deepEqual(idx(4, 4, BIG), [], "empty range");
  assert.deepEqual(idx(4, 9, 0), [4], "at least one (from storage)");
  assert.deepEqual(idx(7, 9, 0), [7], "at least one (from unstable)");
  assert.deepEqual(idx(4, 9, 2 * size), [4, 5], "the limit falls on the boundary");
  assert.deepEqual(idx(4, 9, 3 * size), [4, 5, 6], "the limit counts the storage part too");
  assert.deepEqual(idx(4, 9, 3 * size - 1), [4, 5]);
  assert.deepEqual(idx(1, 9, 2 * size), [1, 2], "storage stops early: nothing from unstable");
  assert.deepEqual(idx(5, 9, 2 * size), [5, 6]);
  assert.deepEqual(log.entries(7, BIG).map((e) => e.index), [7, 8]);
  assert.deepEqual(log.entries(9, BIG), [], "entries() beyond the last index is empty");

  s.compact(3);
  assert.throws(() => log.slice(3, 5, BIG), LogCompactedError);
  assert.deepEqual(idx(4, 6, BIG), [4, 5]);
  assert.throws(() => log.slice(4, 10, BIG), AssertionError, "hi beyond lastIndex + 1");
});

// ------------------------------------------------------------------ Unstable

test("Unstable.truncateAndAppend: append, replace all, or truncate inside (etcd's table)", () => {
  type Case = { offset: number; have: number[]; append: [number, number][]; wantOffset: number; want: [number, number][] };
  const cases: Case[] = [
    // append to the end
    { offset: 5, have: [1], append: [[6, 1], [7, 1]], wantOffset: 5, want: [[5, 1], [6, 1], [7, 1]] },
    // replace all unstable entries
    { offset: 5, have: [1], append: [[5, 2], [6, 2]], wantOffset: 5, want: [[5, 2], [6, 2]] },
    { offset: 5, have: [1], append: [[4, 2], [5, 2], [6, 2]], wantOffset: 4, want: [[4, 2], [5, 2], [6, 2]] },
    // truncate the unstable entries, then append
    { offset: 5, have: [1, 1, 1], append: [[6, 2]], wantOffset: 5, want: [[5, 1], [6, 2]] },
    { offset: 5, have: [1, 1, 1], append: [[7, 2], [8, 2]], wantOffset: 5, want: [[5, 1], [6, 1], [7, 2], [8, 2]] },
  ];
  for (const c of cases) {
    const u = new Unstable(c.offset);
    u.entries = entriesOf(c.offset, c.have);
    u.truncateAndAppend(ents(c.append));
    assert.equal(u.offset, c.wantOffset, JSON.stringify(c));
    assert.deepEqual(u.entries.map((e) => [e.index, e.term]), c.want, JSON.stringify(c));
  }
});

test("Unstable.stableTo drops persisted entries, but ignores a persist report for entries replaced meanwhile", () => {
  // Ready handed out (6,t1) (7,t1); before advance(), a new leader replaced 7 with (7,t2).
  const u = new Unstable(6);
  u.entries = entriesOf(6, [1, 1]);
  u.truncateAndAppend(ents([[7, 2]]));
  u.stableTo(7, 1); // the host persisted the old (7,t1): not what the log now holds at 7
  assert.equal(u.offset, 6);
  assert.deepEqual(u.entries.map((e) => [e.index, e.term]), [[6, 1], [7, 2]]);
  u.stableTo(6, 1); // (6,t1) was persisted and still stands
  assert.equal(u.offset, 7);
  assert.deepEqual(u.entries.map((e) => [e.index, e.term]), [[7, 2]]);
  u.stableTo(5, 1); // before the offset: ignored
  u.stableTo(9, 2); // beyond the last: ignored
  assert.equal(u.offset, 7);
  u.stableTo(7, 2);
  assert.equal(u.offset, 8);
  assert.deepEqual(u.entries, []);
});

test("Unstable.stableTo ignores the snapshot index (only stableSnapTo clears a snapshot)", () => {
  const u = new Unstable(0);
  u.restore(snap(4, 1));
  u.truncateAndAppend(entriesOf(5, [1]));
  u.stableTo(4, 1);
  assert.equal(u.offset, 5);
  assert.equal(u.entries.length, 1);
  assert.notEqual(u.snapshot, undefined);
  u.stableSnapTo(3); // not the pending snapshot
  assert.notEqual(u.snapshot, undefined);
  u.stableSnapTo(4);
  assert.equal(u.snapshot, undefined);
});

test("Unstable.maybeFirstIndex / maybeLastIndex / maybeTerm", () => {
  const u = new Unstable(5);
  assert.equal(u.maybeFirstIndex(), undefined, "no snapshot: the first index is storage's");
  assert.equal(u.maybeLastIndex(), undefined);
  u.entries = entriesOf(5, [1, 2]);
  assert.equal(u.maybeLastIndex(), 6);
  assert.equal(u.maybeTerm(6), 2);
  assert.equal(u.maybeTerm(7), undefined);
  assert.equal(u.maybeTerm(4), undefined, "below the offset, storage knows");
  u.restore(snap(10, 3));
  assert.equal(u.maybeFirstIndex(), 11);
  assert.equal(u.maybeLastIndex(), 10);
  assert.equal(u.maybeTerm(10), 3);
  assert.equal(u.maybeTerm(9), undefined);
});

// ------------------------------------------------------------------ RaftLog stableTo / restore / apply cursors

test("RaftLog.stableTo after a conflicting append keeps the replacement unstable", () => {
  const log = raftLog([1], [1, 1]); // 1 stable; 2, 3 unstable
  // Ready handed out 2..3 at term 1; then a leader of term 2 replaces 3.
  assert.equal(log.maybeAppend(2, 1, 0, ents([[3, 2]])), 3);
  log.stableTo(3, 1);
  assert.equal(log.unstable.offset, 2, "the persist report of (3,t1) must not mark (3,t2) stable");
  assert.equal(log.term(3), 2);
});

test("restore from a snapshot replaces the log; entries continue after it", () => {
  const s = new MemoryStorage();
  s.append(entriesOf(1, [1, 1, 1]));
  const log = new RaftLog(s, BIG);
  log.commitTo(2);
  log.appliedTo(2);
  const sn = snap(20, 5);
  log.restore(sn);
  assert.equal(log.committed, 20);
  assert.equal(log.firstIndex(), 21);
  assert.equal(log.lastIndex(), 20);
  assert.equal(log.lastTerm(), 5);
  assert.equal(log.term(20), 5);
  assert.throws(() => log.term(3), LogCompactedError, "the old entries are gone");
  assert.equal(log.snapshot(), sn, "the pending snapshot is the one to hand out");
  assert.equal(log.matchTerm(20, 5), true);
  assert.equal(log.hasNextCommittedEntries(), false, "the snapshot itself is applied by restoring it, not entry by entry");

  // New entries after the snapshot; then the host persists the snapshot and the entries.
  assert.equal(log.maybeAppend(20, 5, 21, entriesOf(21, [5, 6])), 22);
  assert.equal(log.committed, 21);
  s.applySnapshot(sn);
  log.stableSnapTo(20);
  s.append(log.unstable.entries);
  log.stableTo(22, 6);
  log.appliedTo(20);
  assert.equal(log.unstable.snapshot, undefined);
  assert.equal(log.firstIndex(), 21);
  assert.equal(log.lastIndex(), 22);
  assert.deepEqual(log.nextCommittedEntries().map((e) => e.index), [21]);
});

test("nextCommittedEntries hands out committed entries once, bounded by bytes, from after applying", () => {
  const s = new MemoryStorage();
  const data = () => new Uint8Array(76); // 100 bytes per entry
  s.append(entriesOf(1, [1, 1, 1, 1, 1], data));
  const log = new RaftLog(s, 250);
  assert.equal(log.hasNextCommittedEntries(), false);
  log.commitTo(4);
  assert.deepEqual(log.nextCommittedEntries().map((e) => e.index), [1, 2], "250 bytes: two entries");
  log.acceptApplying(2);
  assert.deepEqual(log.nextCommittedEntries().map((e) => e.index), [3, 4]);
  log.acceptApplying(4);
  assert.equal(log.hasNextCommittedEntries(), false);
  log.appliedTo(4);
  assert.equal(log.applied, 4);
  assert.throws(() => log.appliedTo(5), AssertionError, "cannot apply beyond commit");
  assert.throws(() => log.commitTo(6), AssertionError, "cannot commit beyond the last index");
});

test("maybeCommit (leader) commits only an index of the given term", () => {
  const log = raftLog([1, 1, 2, 2]);
  assert.equal(log.maybeCommit(2, 2), false, "index 2 is of term 1: not by counting replicas in term 2");
  assert.equal(log.committed, 0);
  assert.equal(log.maybeCommit(3, 2), true);
  assert.equal(log.committed, 3, "committing 3 commits everything before it");
  assert.equal(log.maybeCommit(2, 1), false, "never backwards");
  assert.equal(log.committed, 3);
});
