import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../lib/assert.js";
import { ent, ents, gw, snap } from "./testing/fixtures.js";
import { TermRuns } from "./term-runs.js";
import { planCompaction, planGroupWrite, type LogShape } from "./write-plan.js";

/** The worked example of write-plan.ts: snapshot at 4, entries 5..9 with terms 1 1 2 2 2. */
function example(): LogShape {
  const runs = new TermRuns();
  runs.push({ start: 5, term: 1 });
  runs.push({ start: 7, term: 2 });
  return { group: 1, snapshotIndex: 4, snapshotTerm: 1, lastStoredIndex: 9, runs };
}

function summary(shape: LogShape, w: Parameters<typeof planGroupWrite>[1]) {
  const p = planGroupWrite(shape, w);
  return { puts: p.entries.map((e) => e.index), deletes: p.deleteEntries, stale: p.staleThrough, runDeletes: p.runDeletes, runPuts: p.runPuts, truncatedFrom: p.truncatedFrom, last: p.lastIndex };
}

test("the worked example's table", () => {
  assert.deepEqual(summary(example(), gw(1, { entries: [ent(8, 3)] })), { puts: [8], deletes: { lo: 9, hi: 9 }, stale: undefined, runDeletes: [], runPuts: [{ start: 8, term: 3 }], truncatedFrom: 8, last: 8 });
  assert.deepEqual(summary(example(), gw(1, { entries: [ent(6, 2)] })), { puts: [6], deletes: { lo: 7, hi: 9 }, stale: undefined, runDeletes: [7], runPuts: [{ start: 6, term: 2 }], truncatedFrom: 6, last: 6 });
  assert.deepEqual(summary(example(), gw(1, { entries: ents(10, 11, 2) })), { puts: [10, 11], deletes: undefined, stale: undefined, runDeletes: [], runPuts: [], truncatedFrom: undefined, last: 11 });
  assert.deepEqual(summary(example(), gw(1, { snapshot: snap(7, 4) })), { puts: [], deletes: { lo: 8, hi: 9 }, stale: 7, runDeletes: [5, 7], runPuts: [], truncatedFrom: 5, last: 7 });
});

test("a snapshot with entries: entries at or below it are skipped and the rest start a run", () => {
  const p = planGroupWrite(example(), gw(1, { snapshot: snap(20, 4), entries: [ent(20, 4), ent(21, 4)], hardState: { term: 4, vote: 0, commit: 21 } }));
  assert.deepEqual(p.entries.map((e) => e.index), [21]);
  assert.deepEqual(p.runPuts, [{ start: 21, term: 4 }]);
  assert.deepEqual([p.deleteEntries, p.staleThrough, p.lastIndex], [undefined, 9, 21]);
  const stale = planGroupWrite(example(), gw(1, { snapshot: snap(3, 1) }));
  assert.deepEqual([stale.snapshot, stale.staleSnapshot], [undefined, true]);
});

test("appends that leave a gap, decrease the term or commit past the log are programmer errors", () => {
  assert.throws(() => planGroupWrite(example(), gw(1, { entries: [ent(11, 2)] })), /missing log entries/);
  assert.throws(() => planGroupWrite(example(), gw(1, { entries: [ent(8, 1)] })), /below the previous entry's term/);
  assert.throws(() => planGroupWrite(example(), gw(1, { entries: [ent(10, 2), ent(12, 2)] })), /not contiguous/);
  assert.throws(() => planGroupWrite(example(), gw(1, { hardState: { term: 2, vote: 0, commit: 10 } })), /commit 10 is beyond the last index 9/);
});

test("compaction deletes the runs up to the new first index and restarts the covering run there", () => {
  assert.deepEqual(planCompaction(example(), snap(6, 1)), { group: 1, snapshot: snap(6, 1), runDeletes: [5, 7], runPuts: [{ start: 7, term: 2 }] });
  assert.deepEqual(planCompaction(example(), snap(7, 2))?.runPuts, [{ start: 8, term: 2 }]);
  assert.deepEqual(planCompaction(example(), snap(9, 2))?.runPuts, [], "compacting the whole log leaves no run");
  assert.equal(planCompaction(example(), snap(4, 1)), undefined, "not newer than the stored snapshot: nothing to do");
  assert.throws(() => planCompaction(example(), snap(8, 3)), AssertionError, "the snapshot's term must match the log");
  assert.throws(() => planCompaction(example(), snap(10, 2)), AssertionError, "beyond the log");
});
