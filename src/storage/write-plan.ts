/**
 * What one group's share of a write round, or a compaction, changes — computed from the group's
 * current shape before anything is written, so that a store can (1) turn the plan into one
 * atomic batch and (2) apply the same plan to its in-memory view once the batch is durable.
 *
 * Worked example: snapshot at 4, entries 5..9 with terms 1 1 2 2 2, runs [5 → 1], [7 → 2].
 *
 * | write                 | entry puts | entry deletes | run deletes | run puts |
 * | --------------------- | ---------- | ------------- | ----------- | -------- |
 * | entry 8, term 3       | 8          | 9             | —           | [8 → 3]  |
 * | entry 6, term 2       | 6          | 7..9          | 7           | [6 → 2]  |
 * | entries 10..11, term 2| 10, 11     | —             | —           | —        |
 * | snapshot at 7 (term 4)| —          | 8..9 (batch), 5..7 (cleared after) | 5, 7 | — |
 */
import { assert } from "../lib/assert.js";
import type { GroupId, LogIndex, Term } from "../lib/ids.js";
import type { GroupWrite } from "../multiraft/ports.js";
import type { Entry, HardState, Snapshot } from "../raft/index.js";
import { runsForAppend, type TermRun, type TermRuns } from "./term-runs.js";

/** The parts of a group's state that planning reads. */
export interface LogShape {
  readonly group: GroupId;
  readonly snapshotIndex: LogIndex;
  readonly snapshotTerm: Term;
  readonly lastStoredIndex: LogIndex;
  readonly runs: TermRuns;
}

/** The log's bounds that entries are planned against (after a snapshot in the same write, if any). */
interface Bounds {
  readonly group: GroupId;
  readonly snapshotIndex: LogIndex;
  readonly lastIndex: LogIndex;
}

/** Inclusive index interval. */
export interface IndexSpan {
  readonly lo: LogIndex;
  readonly hi: LogIndex;
}

export interface GroupPlan {
  readonly group: GroupId;
  /** A snapshot that replaces the whole log (newer than the stored one). */
  readonly snapshot: Snapshot | undefined;
  /** True when the write carried a snapshot no newer than the stored one; it is ignored. */
  readonly staleSnapshot: boolean;
  /** Entries to store, contiguous, all above the (new) snapshot index. */
  readonly entries: readonly Entry[];
  /** Entry keys to delete in the batch: stored entries above the new last index, or above the new snapshot index. */
  readonly deleteEntries: IndexSpan | undefined;
  /** Old entries at or below the new snapshot index, cleared after the batch (harmless if a crash leaves them). */
  readonly staleThrough: LogIndex | undefined;
  readonly runDeletes: readonly LogIndex[];
  readonly runPuts: readonly TermRun[];
  readonly hardState: HardState | undefined;
  /** The first index whose old entry is removed or replaced, if any (caches drop from there). */
  readonly truncatedFrom: LogIndex | undefined;
  readonly lastIndex: LogIndex;
}

/** Plans one group's share of a round: snapshot first, then entries (replacing any stored suffix), then hard state. */
export function planGroupWrite(shape: LogShape, w: GroupWrite): GroupPlan {
  assert(w.group === shape.group, "plan for the wrong group");
  const snap = planSnapshot(shape, w.snapshot);
  const base: Bounds =
    snap.snapshot === undefined
      ? { group: shape.group, snapshotIndex: shape.snapshotIndex, lastIndex: shape.lastStoredIndex }
      : { group: shape.group, snapshotIndex: snap.snapshot.metadata.index, lastIndex: snap.snapshot.metadata.index };
  const ents = planEntries(base, snap.snapshot === undefined ? shape.runs : undefined, w.entries);
  const lastIndex = ents.entries.length > 0 ? ents.entries[ents.entries.length - 1]!.index : base.lastIndex;
  if (w.hardState !== undefined) {
    assert(w.hardState.commit <= lastIndex, () => `group ${shape.group}: hard state commit ${w.hardState!.commit} is beyond the last index ${lastIndex}`);
  }
  return {
    group: shape.group,
    snapshot: snap.snapshot,
    staleSnapshot: snap.stale,
    entries: ents.entries,
    deleteEntries: mergeSpans(snap.deleteEntries, ents.deleteEntries),
    staleThrough: snap.staleThrough,
    runDeletes: [...snap.runDeletes, ...ents.runDeletes],
    runPuts: ents.runPuts,
    hardState: w.hardState,
    truncatedFrom: snap.truncatedFrom ?? ents.truncatedFrom,
    lastIndex,
  };
}

function planSnapshot(shape: LogShape, snapshot: Snapshot | undefined) {
  const none = { snapshot: undefined, stale: false, deleteEntries: undefined, staleThrough: undefined, runDeletes: [] as LogIndex[], truncatedFrom: undefined };
  if (snapshot === undefined) return none;
  const s = snapshot.metadata.index;
  if (s <= shape.snapshotIndex) return { ...none, stale: true };
  const first = shape.snapshotIndex + 1;
  const last = shape.lastStoredIndex;
  const hasLog = last >= first;
  return {
    snapshot,
    stale: false,
    deleteEntries: hasLog && last > s ? { lo: Math.max(first, s + 1), hi: last } : undefined,
    staleThrough: hasLog && first <= s ? Math.min(last, s) : undefined,
    runDeletes: shape.runs.startsFrom(0),
    truncatedFrom: hasLog ? first : undefined,
  };
}

/** `runs` is undefined when a snapshot in the same write emptied the log. */
function planEntries(base: Bounds, runs: TermRuns | undefined, given: readonly Entry[]) {
  const entries = given.filter((e) => e.index > base.snapshotIndex);
  const none = { entries, deleteEntries: undefined, runDeletes: [] as LogIndex[], runPuts: [] as TermRun[], truncatedFrom: undefined };
  if (entries.length === 0) return none;
  const f = entries[0]!.index;
  const last = entries[entries.length - 1]!.index;
  assert(f <= base.lastIndex + 1, () => `group ${base.group}: missing log entries: last index ${base.lastIndex}, append at ${f}`);
  const prevTerm = f - 1 > base.snapshotIndex ? runs!.termAt(f - 1) : undefined;
  checkAppendable(base.group, entries, prevTerm);
  const truncating = f <= base.lastIndex;
  return {
    entries,
    deleteEntries: truncating && last < base.lastIndex ? { lo: last + 1, hi: base.lastIndex } : undefined,
    runDeletes: truncating && runs !== undefined ? runs.startsFrom(f) : [],
    runPuts: runsForAppend(entries, prevTerm),
    truncatedFrom: truncating ? f : undefined,
  };
}

function checkAppendable(group: GroupId, entries: readonly Entry[], prevTerm: Term | undefined): void {
  let term = prevTerm ?? 0;
  entries.forEach((e, k) => {
    assert(e.index === entries[0]!.index + k, () => `group ${group}: entries to append are not contiguous at ${e.index}`);
    assert(e.term >= term, () => `group ${group}: entry ${e.index} has term ${e.term}, below the previous entry's term ${term}`);
    term = e.term;
  });
}

function mergeSpans(a: IndexSpan | undefined, b: IndexSpan | undefined): IndexSpan | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return { lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) };
}

export interface CompactionPlan {
  readonly group: GroupId;
  readonly snapshot: Snapshot;
  readonly runDeletes: readonly LogIndex[];
  readonly runPuts: readonly TermRun[];
}

/**
 * Plans recording `snapshot` and discarding the entries up to its index. Returns undefined when
 * the snapshot is not newer than the stored one (nothing to do).
 */
export function planCompaction(shape: LogShape, snapshot: Snapshot): CompactionPlan | undefined {
  const i = snapshot.metadata.index;
  if (i <= shape.snapshotIndex) return undefined;
  assert(i <= shape.lastStoredIndex, () => `group ${shape.group}: compaction to ${i} is beyond the last index ${shape.lastStoredIndex}`);
  const term = shape.runs.termAt(i);
  assert(term === snapshot.metadata.term, () => `group ${shape.group}: snapshot at ${i} has term ${snapshot.metadata.term}, the log has ${term}`);
  const next = i + 1;
  const runPuts = next <= shape.lastStoredIndex ? [{ start: next, term: shape.runs.termAt(next) }] : [];
  return { group: shape.group, snapshot, runDeletes: shape.runs.startsThrough(next), runPuts };
}
