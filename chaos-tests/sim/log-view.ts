/**
 * A read-only view of one node's log as the node itself sees it at the moment it hands out a
 * Ready: its persisted storage, overlaid with the Ready's snapshot (which replaces everything) and
 * entries (which replace any conflicting suffix). The checker reads logs only through this view.
 */
import type { LogIndex, Term } from "../../src/lib/ids.js";
import type { Entry, MemoryStorage, Snapshot } from "../../src/raft/index.js";

/** What the checker needs of a log. Indexes below `firstIndex` are compacted (covered by a snapshot). */
export interface LogView {
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  /** The entry at `i`, or undefined when compacted or beyond the end. */
  entryAt(i: LogIndex): Entry | undefined;
  /** The term at `i`, including the snapshot's index (firstIndex - 1); undefined when unknown. */
  termAt(i: LogIndex): Term | undefined;
}

/** Storage plus not-yet-persisted snapshot and entries. */
export class OverlayLogView implements LogView {
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  private readonly snapIndex: LogIndex;
  private readonly snapTerm: Term;
  private readonly pendingFirst: LogIndex;

  constructor(
    private readonly storage: MemoryStorage,
    snapshot: Snapshot | undefined,
    private readonly pending: readonly Entry[],
  ) {
    this.snapIndex = snapshot !== undefined ? snapshot.metadata.index : storage.firstIndex() - 1;
    this.snapTerm = snapshot !== undefined ? snapshot.metadata.term : storage.term(this.snapIndex);
    const storedLast = snapshot !== undefined ? snapshot.metadata.index : storage.lastIndex();
    this.pendingFirst = pending.length > 0 ? pending[0]!.index : storedLast + 1;
    this.firstIndex = this.snapIndex + 1;
    this.lastIndex = pending.length > 0 ? pending[pending.length - 1]!.index : storedLast;
  }

  entryAt(i: LogIndex): Entry | undefined {
    if (i <= this.snapIndex || i > this.lastIndex) return undefined;
    if (i >= this.pendingFirst) return this.pending[i - this.pendingFirst];
    if (i < this.storage.firstIndex() || i > this.storage.lastIndex()) return undefined;
    return this.storage.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0];
  }

  termAt(i: LogIndex): Term | undefined {
    if (i === this.snapIndex) return this.snapTerm;
    return this.entryAt(i)?.term;
  }
}
