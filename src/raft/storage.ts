/**
 * The read side of stable storage, as the core sees it, and an in-memory implementation.
 *
 * The core never writes storage: the host persists what `Ready` hands it and then calls
 * `advance()`. The core reads storage synchronously; a real store answers from a bounded cache
 * and throws {@link LogUnavailableError} for ranges it must first load (the core retries on a
 * later tick), which keeps the core synchronous while the partition log lives on disk.
 */
import type { LogIndex, Term } from "../lib/ids.js";
import { assert } from "../lib/assert.js";
import type { ConfState, Entry, HardState, Snapshot } from "./messages.js";
import { entrySizeBytes } from "./messages.js";

/** The requested index is at or below the log's compaction point (use the snapshot instead). */
export class LogCompactedError extends Error {
  override readonly name = "LogCompactedError";
  constructor(readonly index: LogIndex) {
    super(`log index ${index} is compacted`);
  }
}

/** The requested range exists but is not in memory yet; the host is loading it. Retry later. */
export class LogUnavailableError extends Error {
  override readonly name = "LogUnavailableError";
  constructor(readonly lo: LogIndex, readonly hi: LogIndex) {
    super(`log range [${lo}, ${hi}) is temporarily unavailable`);
  }
}

/** The snapshot is being produced; retry later. */
export class SnapshotUnavailableError extends Error {
  override readonly name = "SnapshotUnavailableError";
  constructor() {
    super("snapshot is temporarily unavailable");
  }
}

export interface InitialState {
  readonly hardState: HardState;
  readonly confState: ConfState;
}

/** Stable storage, read-only from the core's point of view. */
export interface Storage {
  /**
   * Hard state and membership as persisted. The membership is the one as of the applied index the
   * host will restart from (`Config.applied`, by default the snapshot's index); the core re-applies
   * the conf entries it re-delivers after that.
   */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at most `maxBytes` in total but always at least one if any is in range.
   * Throws {@link LogCompactedError} if lo <= the compaction point, {@link LogUnavailableError} if not loaded.
   */
  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[];
  /** The term of entry `i`, for i in [firstIndex()-1, lastIndex()]. Throws {@link LogCompactedError} below. */
  term(i: LogIndex): Term;
  /** Index of the first entry still in the log (snapshot index + 1). */
  firstIndex(): LogIndex;
  /** Index of the last entry (the snapshot index if the log is empty). */
  lastIndex(): LogIndex;
  /** The most recent snapshot. Throws {@link SnapshotUnavailableError} while one is being made. */
  snapshot(): Snapshot;
}

const EMPTY_CONF: ConfState = { voters: [], learners: [] };

/** The snapshot every founding member of a group starts from: the initial membership at index 1, term 1. */
export function bootstrapSnapshot(voters: readonly number[], learners: readonly number[] = []): Snapshot {
  return { metadata: { index: 1, term: 1, confState: { voters: [...voters], learners: [...learners] } }, data: new Uint8Array() };
}

/**
 * Storage in memory, for tests and the simulator. Besides the {@link Storage} reads it offers the
 * writes a host performs: `setHardState`, `append`, `applySnapshot`, `createSnapshot`, `compact`.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = { metadata: { index: 0, term: 0, confState: EMPTY_CONF }, data: new Uint8Array() };
  // ents[0] is a dummy standing for the snapshot's last entry: index and term only.
  // Invariant: ents[i].index === ents[0].index + i.
  private ents: Entry[] = [{ term: 0, index: 0, type: "normal", data: new Uint8Array() }];

  /**
   * A storage for a founding member of a brand-new group: the initial membership is a snapshot at
   * index 1, term 1, and the hard state starts in term 1 with that index committed. A node that
   * joins later starts from an empty `new MemoryStorage()`: it has no membership and cannot
   * campaign until the leader sends it the group's state, which always begins with a snapshot
   * (index 1 is compacted), so it learns the membership before it replays any change to it.
   */
  static bootstrap(voters: readonly number[], learners: readonly number[] = []): MemoryStorage {
    const s = new MemoryStorage();
    s.applySnapshot(bootstrapSnapshot(voters, learners));
    s.hardState = { term: 1, vote: 0, commit: 1 };
    return s;
  }

  initialState(): InitialState {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new LogCompactedError(lo);
    assert(hi <= this.lastIndex() + 1, () => `entries hi ${hi} is out of bound lastIndex ${this.lastIndex()}`);
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - offset]!;
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  term(i: LogIndex): Term {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new LogCompactedError(i);
    const e = this.ents[i - offset];
    assert(e !== undefined, () => `term(${i}) is beyond lastIndex ${this.lastIndex()}`);
    return e.term;
  }

  firstIndex(): LogIndex {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): LogIndex {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole state with a snapshot received from the leader. Older snapshots are ignored. */
  applySnapshot(snap: Snapshot): boolean {
    if (snap.metadata.index <= this.snap.metadata.index) return false;
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: "normal", data: new Uint8Array() }];
    return true;
  }

  /**
   * Makes a snapshot of the state machine as of applied index `i` (which must be in the log) and
   * keeps it as the latest. Does not compact; call {@link compact} for that.
   */
  createSnapshot(i: LogIndex, confState: ConfState, data: Uint8Array): Snapshot {
    assert(i > this.snap.metadata.index, () => `createSnapshot(${i}) is not after snapshot ${this.snap.metadata.index}`);
    assert(i <= this.lastIndex(), () => `createSnapshot(${i}) is beyond lastIndex ${this.lastIndex()}`);
    this.snap = { metadata: { index: i, term: this.term(i), confState }, data };
    return this.snap;
  }

  /** Discards entries up to and including `compactIndex`, which must not exceed the applied index. */
  compact(compactIndex: LogIndex): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) return;
    assert(compactIndex <= this.lastIndex(), () => `compact(${compactIndex}) is beyond lastIndex ${this.lastIndex()}`);
    const dummy = this.ents[compactIndex - offset]!;
    this.ents = [{ term: dummy.term, index: dummy.index, type: "normal", data: new Uint8Array() }, ...this.ents.slice(compactIndex - offset + 1)];
  }

  /** Appends entries, replacing any conflicting suffix. Entries at or below the compaction point are skipped. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    let ents = entries;
    if (ents[ents.length - 1]!.index < first) return;
    if (ents[0]!.index < first) ents = ents.slice(first - ents[0]!.index);
    const offset = ents[0]!.index - this.ents[0]!.index;
    assert(offset <= this.ents.length, () => `missing log entry: last ${this.lastIndex()}, append at ${ents[0]!.index}`);
    this.ents = this.ents.slice(0, offset).concat(ents);
  }
}
