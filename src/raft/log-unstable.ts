/**
 * The unstable part of a log: entries (and at most one incoming snapshot) that the core has
 * accepted but the host has not yet persisted. `entries[i]` has index `offset + i`.
 *
 * Example: storage holds 1..5 and the unstable part holds offset=6, entries [6,7]. An append
 * from a new leader starting at index 4 truncates: offset becomes 4, entries [4',5',...]; the host
 * overwrites 4..5 in storage when it persists them (Ready.entries replace a conflicting suffix).
 */
import { assert } from "../lib/assert.js";
import type { LogIndex, Term } from "../lib/ids.js";
import type { Entry, Snapshot } from "./messages.js";

export class Unstable {
  /** An incoming snapshot not yet persisted. */
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  // Invariant: entries.length === 0 || entries[0].index === offset.
  offset: LogIndex;

  constructor(offset: LogIndex) {
    this.offset = offset;
  }

  /** The first index, if there is an unstable snapshot. */
  maybeFirstIndex(): LogIndex | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  /** The last index, if there are unstable entries or an unstable snapshot. */
  maybeLastIndex(): LogIndex | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.metadata.index;
  }

  /** The term of index `i`, if the unstable part knows it. */
  maybeTerm(i: LogIndex): Term | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  /** The host persisted entries up to (i, t): drop them, unless they were replaced meanwhile. */
  stableTo(i: LogIndex, t: Term): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  /** The host persisted the snapshot at index `i`. */
  stableSnapTo(i: LogIndex): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(snap: Snapshot): void {
    this.offset = snap.metadata.index + 1;
    this.entries = [];
    this.snapshot = snap;
  }

  /** Appends `ents`, truncating whatever unstable entries they conflict with. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces the whole unstable part (and, once persisted, the storage suffix from `after`).
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }

  /** Entries in [lo, hi), which must lie inside the unstable part. */
  slice(lo: LogIndex, hi: LogIndex): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length, () => `unstable.slice[${lo},${hi}) out of bounds [${this.offset},${this.offset + this.entries.length})`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
