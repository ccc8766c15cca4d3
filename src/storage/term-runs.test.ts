import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../lib/assert.js";
import { ents } from "./testing/fixtures.js";
import { runsForAppend, runsOf, TermRuns } from "./term-runs.js";

/** The worked example of term-runs.ts: indexes 5..12 with terms 2 2 3 3 3 5 5 5. */
function example(): TermRuns {
  const runs = new TermRuns();
  for (const r of runsOf([...ents(5, 6, 2), ...ents(7, 9, 3), ...ents(10, 12, 5)])) runs.push(r);
  return runs;
}

test("the worked example: runs, lookups, truncation and compaction", () => {
  const runs = example();
  assert.deepEqual(runs.list(), [{ start: 5, term: 2 }, { start: 7, term: 3 }, { start: 10, term: 5 }]);
  assert.deepEqual([5, 6, 7, 8, 9, 10, 12].map((i) => runs.termAt(i)), [2, 2, 3, 3, 3, 5, 5]);
  const truncated = example();
  truncated.truncateFrom(8);
  assert.deepEqual(truncated.list(), [{ start: 5, term: 2 }, { start: 7, term: 3 }]);
  const compacted = example();
  compacted.dropThrough(6, 12);
  assert.deepEqual(compacted.list(), [{ start: 7, term: 3 }, { start: 10, term: 5 }]);
  compacted.dropThrough(8, 12);
  assert.deepEqual(compacted.list(), [{ start: 9, term: 3 }, { start: 10, term: 5 }]);
  compacted.dropThrough(12, 12);
  assert.deepEqual(compacted.list(), [], "compacting everything leaves no run");
});

test("appending after an existing entry starts a run only on a new term; after a snapshot, always", () => {
  assert.deepEqual(runsForAppend(ents(13, 14, 5), 5), []);
  assert.deepEqual(runsForAppend([...ents(13, 13, 5), ...ents(14, 15, 6)], 5), [{ start: 14, term: 6 }]);
  assert.deepEqual(runsForAppend(ents(13, 14, 5), undefined), [{ start: 13, term: 5 }]);
});

test("runs must follow each other and cover the index asked for", () => {
  const runs = example();
  assert.throws(() => runs.push({ start: 9, term: 9 }), AssertionError, "start not after the last");
  assert.throws(() => runs.push({ start: 20, term: 4 }), AssertionError, "term not after the last");
  assert.throws(() => runs.termAt(4), AssertionError);
  assert.throws(() => new TermRuns().termAt(1), AssertionError);
});
