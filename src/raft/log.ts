/**
 * A group's log as the core sees it: the stable prefix in {@link Storage} plus the {@link Unstable}
 * suffix, with the commit and apply cursors.
 *
 * Invariants: applied <= applying <= committed; committed <= lastIndex();
 * firstIndex() - 1 <= applied (everything compacted has been applied).
 */
import { assert } from "../lib/assert.js";
import type { LogIndex, Term } from "../lib/ids.js";
import { Unstable } from "./log-unstable.js";
import type { Entry, Snapshot } from "./messages.js";
import { entrySizeBytes } from "./messages.js";
import { LogCompactedError, type Storage } from "./storage.js";

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: LogIndex;
  /** Highest index handed to the host for applying (in a Ready not yet advanced). */
  applying: LogIndex;
  /** Highest index the host has applied. */
  applied: LogIndex;

  constructor(readonly storage: Storage, private readonly maxApplyingBytes: number) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    // The snapshot is applied by definition; entries after it are re-delivered on restart.
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): LogIndex {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): LogIndex {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): Term {
    return this.term(this.lastIndex());
  }

  /**
   * The term of entry `i`; 0 for indexes beyond the last one. Throws {@link LogCompactedError}
   * below the first index minus one (whose term the snapshot keeps).
   */
  term(i: LogIndex): Term {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i < this.firstIndex() - 1) throw new LogCompactedError(i);
    if (i > this.lastIndex()) return 0;
    return this.storage.term(i);
  }

  /** Like {@link term}, but 0 for compacted indexes. For comparisons that only need a match. */
  termOrZero(i: LogIndex): Term {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof LogCompactedError) return 0;
      throw e;
    }
  }

  matchTerm(i: LogIndex, t: Term): boolean {
    return this.termOrZero(i) === t;
  }

  /**
   * Whether a log ending at (lastIndex, lastTerm) is at least as up to date as ours (thesis §3.6.1):
   * a later last term wins, and with equal last terms the longer log wins.
   */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Appends the leader's entries that follow (index, logTerm) if our log matches there, truncating
   * the first conflicting suffix, and commits up to min(committed, last new index).
   * Returns the last index of the new entries, or undefined when the logs do not match at `index`.
   */
  maybeAppend(index: LogIndex, logTerm: Term, committed: LogIndex, ents: readonly Entry[]): LogIndex | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      assert(conflict > this.committed, () => `entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(conflict - index - 1));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries after a possibly truncated suffix; returns the new last index. */
  append(ents: readonly Entry[]): LogIndex {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    assert(after >= this.committed, () => `append after ${after} is out of range (committed ${this.committed})`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry of `ents` whose term differs from ours at that index, or the
   * first new entry beyond our last index; 0 if all of `ents` is already in our log.
   */
  findConflict(ents: readonly Entry[]): LogIndex {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking (thesis §5.3 end, and etcd's "findConflictByTerm"): the largest index <= `index`
   * whose term is <= `term`, with that term. Both sides use it to skip a whole term of mismatched
   * entries per round trip instead of one entry.
   *
   *   idx   1 2 3 4 5 6 7 8 9
   *   ours  1 3 3 3 5 5 5 5 5     findConflictByTerm(9, 4) → (4, 3)
   *   their 1 3 3 4 4 4 4 4 4     the leader retries from index 5
   */
  findConflictByTerm(index: LogIndex, term: Term): { index: LogIndex; term: Term } {
    for (let i = index; i >= 0; i--) {
      let t: Term;
      try {
        t = this.term(i);
      } catch (e) {
        if (e instanceof LogCompactedError) return { index: i, term: 0 };
        throw e;
      }
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  commitTo(tocommit: LogIndex): void {
    if (tocommit <= this.committed) return;
    // The leader only sends a commit index this node acknowledged having: a log that ends before
    // it lost acknowledged entries (a wiped or restored-from-old-backup store under the same id).
    assert(
      tocommit <= this.lastIndex(),
      () => `commit ${tocommit} is out of range [lastIndex ${this.lastIndex()}]: this node acknowledged entries it no longer has ` +
        "(was its data lost, replaced or restored from an old copy?); a node that lost its data must rejoin as a new member",
    );
    this.committed = tocommit;
  }

  /** Leader commit rule: only entries of the current term are committed by counting (thesis §3.6.2, Figure 3.7). */
  maybeCommit(maxIndex: LogIndex, term: Term): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: LogIndex): void {
    if (i === 0) return;
    assert(i <= this.committed && i >= this.applied, () => `applied ${i} is out of range [prev applied ${this.applied}, committed ${this.committed}]`);
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  stableTo(i: LogIndex, t: Term): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: LogIndex): void {
    this.unstable.stableSnapTo(i);
  }

  /** Committed entries not yet handed out for applying, bounded by bytes (at least one). */
  nextCommittedEntries(): Entry[] {
    const lo = Math.max(this.applying + 1, this.firstIndex());
    if (lo > this.committed) return [];
    return this.slice(lo, this.committed + 1, this.maxApplyingBytes);
  }

  hasNextCommittedEntries(): boolean {
    return Math.max(this.applying + 1, this.firstIndex()) <= this.committed;
  }

  /** Marks entries up to `i` as handed out for applying. */
  acceptApplying(i: LogIndex): void {
    assert(i <= this.committed, () => `applying ${i} beyond committed ${this.committed}`);
    this.applying = i;
  }

  /** The latest snapshot: the unstable one if any, else storage's (which may throw "unavailable"). */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with a snapshot (follower side of InstallSnapshot). */
  restore(snap: Snapshot): void {
    this.committed = snap.metadata.index;
    this.unstable.restore(snap);
  }

  /** Entries from `i` to the end, at most `maxBytes` (at least one). */
  entries(i: LogIndex, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  /**
   * Entries in [lo, hi), at most `maxBytes` (at least one). Throws {@link LogCompactedError} if lo
   * is compacted and passes on storage's LogUnavailableError.
   */
  slice(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) throw new LogCompactedError(lo);
    assert(hi <= this.lastIndex() + 1, () => `slice[${lo},${hi}) out of bound lastIndex ${this.lastIndex()}`);
    const offset = this.unstable.offset;
    let out: Entry[] = [];
    if (lo < offset) {
      out = this.storage.entries(lo, Math.min(hi, offset), maxBytes);
      // Storage stopped early because of the byte limit.
      if (out.length < Math.min(hi, offset) - lo) return out;
    }
    if (hi > offset) {
      const tail = this.unstable.slice(Math.max(lo, offset), hi);
      let size = 0;
      for (const e of out) size += entrySizeBytes(e);
      for (const e of tail) {
        size += entrySizeBytes(e);
        if (out.length > 0 && size > maxBytes) break;
        out.push(e);
      }
    }
    return out;
  }
}
