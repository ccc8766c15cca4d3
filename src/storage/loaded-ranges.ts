/**
 * Older entry ranges that `load()` brought into memory, for all groups of a node together, under
 * one byte budget. A lagging follower or a restart's re-apply reads old entries; the host loads
 * them on a miss and the core reads them on a later tick. When the budget is exceeded the least
 * recently used ranges go first (reading a range makes it the most recent), never the range just
 * added, so every load is readable at least once.
 *
 * Invariant: the ranges of one group never overlap; bytes === the sum of their bytes.
 */
import { assert } from "../lib/assert.js";
import type { GroupId, LogIndex } from "../lib/ids.js";
import type { Entry } from "../raft/index.js";
import { entrySizeBytes } from "../raft/index.js";
import type { EntrySource } from "./entry-window.js";

/** Contiguous entries of one group, immutable once made. */
export class LoadedRange implements EntrySource {
  readonly lo: LogIndex;
  readonly hi: LogIndex;
  readonly bytes: number;

  constructor(readonly group: GroupId, private readonly entries: readonly Entry[]) {
    assert(entries.length > 0, "a loaded range holds at least one entry");
    this.lo = entries[0]!.index;
    this.hi = this.lo + entries.length;
    let bytes = 0;
    entries.forEach((e, k) => {
      assert(e.index === this.lo + k, () => `loaded range of group ${group} is not contiguous at ${e.index}`);
      bytes += entrySizeBytes(e);
    });
    this.bytes = bytes;
  }

  get(i: LogIndex): Entry {
    const e = this.entries[i - this.lo];
    assert(e !== undefined, () => `loaded range [${this.lo}, ${this.hi}) has no entry ${i}`);
    return e;
  }

  /** The part of this range with index in [lo, hi), or undefined if that is empty. */
  slice(lo: LogIndex, hi: LogIndex): LoadedRange | undefined {
    const from = Math.max(lo, this.lo);
    const to = Math.min(hi, this.hi);
    if (from >= to) return undefined;
    if (from === this.lo && to === this.hi) return this;
    return new LoadedRange(this.group, this.entries.slice(from - this.lo, to - this.lo));
  }
}

export class LoadedRanges {
  // Insertion order is recency order: the first key is the least recently used range.
  private readonly lru = new Map<LoadedRange, true>();
  private readonly byGroup = new Map<GroupId, LoadedRange[]>();
  private byteCount = 0;

  constructor(private readonly loadedBytesMax: number) {}

  get bytes(): number {
    return this.byteCount;
  }

  /** The range of `group` holding entry `i`, marked as recently used; undefined if none. */
  find(group: GroupId, i: LogIndex): LoadedRange | undefined {
    const range = this.byGroup.get(group)?.find((r) => r.lo <= i && i < r.hi);
    if (range !== undefined) {
      this.lru.delete(range);
      this.lru.set(range, true);
    }
    return range;
  }

  /** Adds a range, replacing the group's ranges it overlaps, then evicts down to the budget. */
  add(range: LoadedRange): void {
    for (const r of this.rangesOf(range.group)) if (r.lo < range.hi && range.lo < r.hi) this.remove(r);
    this.insert(range);
    for (const victim of this.lru.keys()) {
      if (this.byteCount <= this.loadedBytesMax || victim === range) break;
      this.remove(victim);
    }
  }

  /** Forgets the group's entries with index >= i (they were replaced or removed). */
  truncateFrom(group: GroupId, i: LogIndex): void {
    this.keepOnly(group, 0, i);
  }

  /** Forgets the group's entries with index <= i (compacted). */
  dropThrough(group: GroupId, i: LogIndex): void {
    this.keepOnly(group, i + 1, Number.MAX_SAFE_INTEGER);
  }

  dropGroup(group: GroupId): void {
    for (const r of this.rangesOf(group)) this.remove(r);
  }

  private keepOnly(group: GroupId, lo: LogIndex, hi: LogIndex): void {
    for (const r of this.rangesOf(group)) {
      const kept = r.slice(lo, hi);
      if (kept === r) continue;
      this.remove(r);
      if (kept !== undefined) this.insert(kept);
    }
  }

  private rangesOf(group: GroupId): LoadedRange[] {
    return [...(this.byGroup.get(group) ?? [])];
  }

  private insert(range: LoadedRange): void {
    const list = this.byGroup.get(range.group);
    if (list === undefined) this.byGroup.set(range.group, [range]);
    else list.push(range);
    this.lru.set(range, true);
    this.byteCount += range.bytes;
  }

  private remove(range: LoadedRange): void {
    const list = this.byGroup.get(range.group);
    const k = list?.indexOf(range) ?? -1;
    if (list === undefined || k < 0) return;
    list.splice(k, 1);
    if (list.length === 0) this.byGroup.delete(range.group);
    this.lru.delete(range);
    this.byteCount -= range.bytes;
  }
}
