/**
 * A contiguous run of entries in memory that grows at the back and shrinks at the front without
 * copying on every removal: a group's cache of its most recent entries.
 *
 * Invariant: entries[head + k].index === lo + k; bytes is the sum of entrySizeBytes over them.
 */
import { assert } from "../lib/assert.js";
import type { LogIndex } from "../lib/ids.js";
import type { Entry } from "../raft/index.js";
import { entrySizeBytes } from "../raft/index.js";

/** Read access shared by the tail window and loaded ranges: entries with index in [lo, hi). */
export interface EntrySource {
  readonly lo: LogIndex;
  readonly hi: LogIndex;
  get(i: LogIndex): Entry;
}

export class EntryWindow implements EntrySource {
  private items: Entry[] = [];
  private head = 0;
  private byteCount = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Index of the first entry; meaningless when empty (then lo === hi). */
  get lo(): LogIndex {
    return this.length === 0 ? 0 : this.items[this.head]!.index;
  }

  /** One past the last entry's index. */
  get hi(): LogIndex {
    return this.length === 0 ? 0 : this.items[this.items.length - 1]!.index + 1;
  }

  get(i: LogIndex): Entry {
    const e = this.items[this.head + i - this.lo];
    assert(e !== undefined && e.index === i, () => `entry window [${this.lo}, ${this.hi}) has no entry ${i}`);
    return e;
  }

  /** Appends `e`, which must directly follow the last entry (any entry starts an empty window). */
  push(e: Entry): void {
    assert(this.length === 0 || e.index === this.hi, () => `entry ${e.index} does not follow the window's last entry ${this.hi - 1}`);
    this.items.push(e);
    this.byteCount += entrySizeBytes(e);
  }

  /** Removes the entries with index >= i. */
  truncateFrom(i: LogIndex): void {
    while (this.length > 0 && this.items[this.items.length - 1]!.index >= i) {
      this.byteCount -= entrySizeBytes(this.items.pop()!);
    }
    if (this.length === 0) this.clear();
  }

  /** Removes the entries with index <= i. */
  dropThrough(i: LogIndex): void {
    while (this.length > 0 && this.items[this.head]!.index <= i) this.dropFirst();
    this.compactStorage();
  }

  /** Drops entries from the front until the window holds at most `maxBytes`, keeping at least one entry. */
  trimToBytes(maxBytes: number): void {
    while (this.length > 1 && this.byteCount > maxBytes) this.dropFirst();
    this.compactStorage();
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.byteCount = 0;
  }

  private dropFirst(): void {
    this.byteCount -= entrySizeBytes(this.items[this.head]!);
    this.items[this.head] = undefined as unknown as Entry; // release the entry for GC
    this.head++;
  }

  /** Reclaims the dropped slots once they are the majority, so removal stays amortized O(1). */
  private compactStorage(): void {
    if (this.length === 0) this.clear();
    else if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
