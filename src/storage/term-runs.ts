/**
 * The terms of a group's log as runs: each run says "entries from `start` on have term `term`,
 * up to the next run's start". A log's terms never decrease, so a group needs one run per term
 * it saw entries in — a few numbers per group — and `term(i)` for any index needs no entry.
 *
 * Worked example: log indexes 5..12 with terms 2 2 3 3 3 5 5 5 (snapshot at 4) have the runs
 * [5 → 2], [7 → 3], [10 → 5]; termAt(8) = 3; truncateFrom(8) leaves [5 → 2], [7 → 3];
 * dropThrough(6) (compaction to 6) leaves [7 → 3]; dropThrough(8) leaves [9 → 3] (the run that
 * covered 9 now starts there).
 *
 * Invariant: starts and terms both strictly increase; the first run starts at the log's first
 * index whenever the log has entries.
 */
import { assert } from "../lib/assert.js";
import type { LogIndex, Term } from "../lib/ids.js";
import type { Entry } from "../raft/index.js";

export interface TermRun {
  readonly start: LogIndex;
  readonly term: Term;
}

export class TermRuns {
  private readonly starts: LogIndex[] = [];
  private readonly terms: Term[] = [];

  get length(): number {
    return this.starts.length;
  }

  /** All runs in order (a copy). */
  list(): TermRun[] {
    return this.starts.map((start, i) => ({ start, term: this.terms[i]! }));
  }

  /** The term of entry `i`; `i` must be covered by a run (at or after the first start). */
  termAt(i: LogIndex): Term {
    let lo = 0;
    let hi = this.starts.length - 1;
    assert(hi >= 0 && i >= this.starts[0]!, () => `no term run covers index ${i}`);
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.terms[lo]!;
  }

  /** The starts of the runs at or after `i` (the ones a truncation at `i` removes). */
  startsFrom(i: LogIndex): LogIndex[] {
    return this.starts.filter((s) => s >= i);
  }

  /** The starts of the runs at or before `i`. */
  startsThrough(i: LogIndex): LogIndex[] {
    return this.starts.filter((s) => s <= i);
  }

  /** Adds a run after the last one. */
  push(run: TermRun): void {
    const n = this.starts.length;
    assert(n === 0 || (run.start > this.starts[n - 1]! && run.term > this.terms[n - 1]!), () => `term run [${run.start} → ${run.term}] does not follow the last run`);
    this.starts.push(run.start);
    this.terms.push(run.term);
  }

  /** Removes the runs starting at or after `i`. */
  truncateFrom(i: LogIndex): void {
    let n = this.starts.length;
    while (n > 0 && this.starts[n - 1]! >= i) n--;
    this.starts.length = n;
    this.terms.length = n;
  }

  /** Removes the runs starting at or before `i`; the run that covered `i + 1` then starts there (if `i + 1` exists). */
  dropThrough(i: LogIndex, lastIndex: LogIndex): void {
    const next = i + 1;
    const nextTerm = next <= lastIndex && this.starts.length > 0 && next >= this.starts[0]! ? this.termAt(next) : undefined;
    let k = 0;
    while (k < this.starts.length && this.starts[k]! <= next) k++;
    this.starts.splice(0, k);
    this.terms.splice(0, k);
    if (nextTerm !== undefined) {
      this.starts.unshift(next);
      this.terms.unshift(nextTerm);
    }
  }

  clear(): void {
    this.starts.length = 0;
    this.terms.length = 0;
  }
}

/**
 * The runs that appending `entries` (contiguous) creates after a last entry of term `prevTerm`;
 * `prevTerm` is undefined when the log is empty (after a snapshot), where the first entry
 * always starts a run.
 */
export function runsForAppend(entries: readonly Entry[], prevTerm: Term | undefined): TermRun[] {
  const out: TermRun[] = [];
  let last = prevTerm;
  for (const e of entries) {
    if (e.term !== last) {
      out.push({ start: e.index, term: e.term });
      last = e.term;
    }
  }
  return out;
}

/** The runs describing `entries` from scratch (the first entry always starts one). */
export function runsOf(entries: readonly Entry[]): TermRun[] {
  return runsForAppend(entries, undefined);
}
