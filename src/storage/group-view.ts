/**
 * The synchronous read view of one group that the Raft core reads (`GroupStorage`), shared by the
 * RocksDB and the in-memory store. It holds only small things: hard state, snapshot metadata,
 * the last index, the term runs, and a bounded tail of recent entries; older entries come from
 * the node-wide {@link LoadedRanges} or are reported as misses.
 *
 * A store changes a view only after the corresponding write is durable (`applyPlan`,
 * `applyCompaction`), so the view never shows what a crash could take back.
 *
 * Invariants: tail is empty or tail.hi === lastIndex + 1; snapshotIndex <= lastIndex;
 * the runs cover exactly [snapshotIndex + 1, lastIndex].
 */
import { assert } from "../lib/assert.js";
import type { GroupId, LogIndex, Term } from "../lib/ids.js";
import type { GroupStorage } from "../multiraft/ports.js";
import type { Entry, HardState, InitialState, Snapshot } from "../raft/index.js";
import { entrySizeBytes, LogCompactedError, LogUnavailableError, SnapshotUnavailableError } from "../raft/index.js";
import { EntryWindow, type EntrySource } from "./entry-window.js";
import { LoadedRange, type LoadedRanges } from "./loaded-ranges.js";
import { missesPerGroupMax, type ResolvedCacheOptions } from "./options.js";
import type { StoredSnapshotMeta } from "./state-codec.js";
import { TermRuns, type TermRun } from "./term-runs.js";
import type { CompactionPlan, GroupPlan, LogShape } from "./write-plan.js";

/** What a view needs from its store. */
export interface ViewContext {
  readonly options: ResolvedCacheOptions;
  readonly loaded: LoadedRanges;
  /** Starts reading the snapshot data of `view` (at its current snapshot index) and hands it to `setSnapshotData`. */
  readonly requestSnapshotData: (view: GroupView) => void;
}

/** A group's state as found on disk when a store opens. */
export interface RestoredGroup {
  readonly hardState: HardState;
  readonly snapshot: StoredSnapshotMeta;
  /**
   * The snapshot data: the host restores its state machine from it right after opening. The view
   * lets go of data larger than snapshotCacheBytesMax once it has handed it out.
   */
  readonly snapshotData: Uint8Array;
  readonly lastIndex: LogIndex;
  readonly runs: readonly TermRun[];
  /** The most recent entries, contiguous, ending at lastIndex (may be empty). */
  readonly tail: readonly Entry[];
}

const ZERO_HARD_STATE: HardState = { term: 0, vote: 0, commit: 0 };
const EMPTY_SNAPSHOT: StoredSnapshotMeta = { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, dataBytes: 0, dataCrc: 0 };
const EMPTY_DATA = new Uint8Array();

export class GroupView implements GroupStorage, LogShape {
  private hard: HardState = ZERO_HARD_STATE;
  private snap: StoredSnapshotMeta = EMPTY_SNAPSHOT;
  private snapData: Uint8Array | undefined = EMPTY_DATA;
  private snapDataLoading = false;
  private last: LogIndex = 0;
  readonly runs = new TermRuns();
  private readonly tail = new EntryWindow();
  private misses: { lo: LogIndex; hi: LogIndex }[] = [];
  /**
   * Changes whenever stored entries are removed or replaced, and at the start and end of a write
   * that does so; a read that overlapped such a change is discarded.
   */
  private epochCount = 0;
  /** Writes in flight that remove or replace stored entries of this group. */
  private changesInFlight = 0;
  /** Set when the group's data turned out corrupt, or the view was retired; every read throws it. */
  private failure: Error | undefined;
  /** Whether the group has any state on disk. */
  persisted = false;

  constructor(readonly group: GroupId, private readonly ctx: ViewContext) {}

  /** A view of a group found on disk. */
  static restore(group: GroupId, ctx: ViewContext, state: RestoredGroup): GroupView {
    const v = new GroupView(group, ctx);
    v.hard = state.hardState;
    v.snap = state.snapshot;
    v.snapData = state.snapshotData;
    v.last = state.lastIndex;
    for (const r of state.runs) v.runs.push(r);
    for (const e of state.tail) v.tail.push(e);
    v.tail.trimToBytes(ctx.options.cacheBytesPerGroup);
    v.persisted = true;
    return v;
  }

  // ---------------------------------------------------------------- GroupStorage (the core's reads)

  initialState(): InitialState {
    this.checkUsable();
    return { hardState: this.hard, confState: this.snap.metadata.confState };
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    this.checkUsable();
    if (lo <= this.snap.metadata.index) throw new LogCompactedError(lo);
    assert(hi <= this.last + 1, () => `group ${this.group}: entries hi ${hi} is beyond lastIndex ${this.last}`);
    const out: Entry[] = [];
    let size = 0;
    let i = lo;
    while (i < hi) {
      const source = this.sourceFor(i);
      if (source === undefined) {
        this.recordMiss(i, hi);
        throw new LogUnavailableError(i, hi);
      }
      for (; i < hi && i < source.hi; i++) {
        const e = source.get(i);
        size += entrySizeBytes(e);
        if (out.length > 0 && size > maxBytes) return out;
        out.push(e);
      }
    }
    return out;
  }

  /**
   * Entries [lo, hi) from the tail cache, at most maxBytes (at least one), or undefined when the
   * cache cannot answer (lo before it, the view failed or is being changed): then read the disk.
   * The tail holds only stored entries, so this is what a read of the disk would return.
   */
  cachedEntries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] | undefined {
    if (this.failure !== undefined || this.changing || this.tail.length === 0) return undefined;
    if (lo < this.tail.lo || lo <= this.snap.metadata.index) return undefined;
    const to = Math.min(hi, this.tail.hi);
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < to; i++) {
      const e = this.tail.get(i);
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  term(i: LogIndex): Term {
    this.checkUsable();
    const s = this.snap.metadata;
    if (i < s.index) throw new LogCompactedError(i);
    if (i === s.index) return s.term;
    assert(i <= this.last, () => `group ${this.group}: term(${i}) is beyond lastIndex ${this.last}`);
    return this.runs.termAt(i);
  }

  firstIndex(): LogIndex {
    this.checkUsable();
    return this.snap.metadata.index + 1;
  }

  lastIndex(): LogIndex {
    this.checkUsable();
    return this.last;
  }

  /**
   * The latest snapshot. Data larger than snapshotCacheBytesMax is handed out once (after open,
   * or after the write that stored it: never, the host has it then) and afterwards read back on
   * demand: SnapshotUnavailableError until it arrives, as the core expects.
   */
  snapshot(): Snapshot {
    this.checkUsable();
    const data = this.snapData;
    if (data === undefined) {
      if (!this.snapDataLoading) {
        this.snapDataLoading = true;
        this.ctx.requestSnapshotData(this);
      }
      throw new SnapshotUnavailableError();
    }
    // Large data is handed out once and then read again when needed, to keep the view small.
    if (data.byteLength > this.ctx.options.snapshotCacheBytesMax) this.snapData = undefined;
    return { metadata: this.snap.metadata, data };
  }

  takeMisses(): readonly { readonly lo: LogIndex; readonly hi: LogIndex }[] {
    const out = this.misses;
    this.misses = [];
    return out;
  }

  // ---------------------------------------------------------------- LogShape and store-side access

  get snapshotIndex(): LogIndex {
    return this.snap.metadata.index;
  }

  get snapshotTerm(): Term {
    return this.snap.metadata.term;
  }

  get lastStoredIndex(): LogIndex {
    return this.last;
  }

  get storedSnapshot(): StoredSnapshotMeta {
    return this.snap;
  }

  get epoch(): number {
    return this.epochCount;
  }

  /** Whether a write that removes or replaces stored entries is in flight. */
  get changing(): boolean {
    return this.changesInFlight > 0;
  }

  /**
   * Brackets a write that removes or replaces stored entries (call endChange() once it settled),
   * so that a disk read overlapping it, which may see either side, is recognised and dropped.
   */
  beginChange(): void {
    this.changesInFlight++;
    this.epochCount++;
  }

  endChange(): void {
    assert(this.changesInFlight > 0, "endChange() without beginChange()");
    this.changesInFlight--;
    this.epochCount++;
  }

  /** The first index held by the tail cache (lastIndex + 1 when it is empty). */
  get tailStart(): LogIndex {
    return this.tail.length === 0 ? this.last + 1 : this.tail.lo;
  }

  get tailBytes(): number {
    return this.tail.bytes;
  }

  /** The failure that retired this view, if any. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /** A stopped group (corrupt, dropped, store closed) takes no writes: the host must leave it out of its rounds. */
  checkWritable(): void {
    assert(this.failure === undefined, () => `group ${this.group} is stopped and takes no writes: ${this.failure!.message}`);
  }

  // ---------------------------------------------------------------- changes (after durable writes)

  /** Applies a write that is now durable. */
  applyPlan(plan: GroupPlan, snapshotCrc: number): void {
    if (plan.snapshot !== undefined) this.replaceWithSnapshot(plan.snapshot, snapshotCrc);
    if (plan.entries.length > 0) this.appendEntries(plan);
    if (plan.hardState !== undefined) this.hard = plan.hardState;
    this.persisted = true;
  }

  /** Applies a compaction that is now durable. */
  applyCompaction(plan: CompactionPlan, snapshotCrc: number): void {
    const i = plan.snapshot.metadata.index;
    this.setSnapshot(plan.snapshot, snapshotCrc);
    this.runs.dropThrough(i, this.last);
    this.tail.dropThrough(i);
    this.ctx.loaded.dropThrough(this.group, i);
    this.misses = this.misses.filter((m) => m.lo > i);
    this.persisted = true;
  }

  /**
   * Caches entries read by a load started at `epoch`. Returns false (and keeps nothing) if the
   * log changed since, or the entries are no longer in the log.
   */
  addLoaded(entries: readonly Entry[], epoch: number): boolean {
    if (epoch !== this.epochCount || this.changing || this.failure !== undefined || entries.length === 0) return false;
    const lo = Math.max(entries[0]!.index, this.snap.metadata.index + 1);
    const hi = Math.min(entries[entries.length - 1]!.index + 1, this.tailStart);
    if (lo >= hi) return false;
    const range = new LoadedRange(this.group, entries).slice(lo, hi);
    if (range !== undefined) this.ctx.loaded.add(range);
    return true;
  }

  /** Hands over snapshot data read on request; ignored if the snapshot changed meanwhile. */
  setSnapshotData(index: LogIndex, data: Uint8Array): void {
    if (index !== this.snap.metadata.index) return;
    this.snapDataLoading = false;
    if (this.snapData === undefined) this.snapData = data;
  }

  /** A snapshot data read finished without data (the snapshot changed); allows a new request. */
  snapshotDataLoadEnded(): void {
    this.snapDataLoading = false;
  }

  /** Retires the view: every later read throws `error` (corruption found, group dropped, store closed). */
  fail(error: Error): void {
    this.failure ??= error;
    this.tail.clear();
    this.ctx.loaded.dropGroup(this.group);
  }

  private replaceWithSnapshot(snapshot: Snapshot, crc: number): void {
    this.setSnapshot(snapshot, crc);
    this.last = snapshot.metadata.index;
    this.runs.clear();
    this.tail.clear();
    this.ctx.loaded.dropGroup(this.group);
    this.misses = [];
    this.epochCount++;
  }

  private setSnapshot(snapshot: Snapshot, crc: number): void {
    this.snap = { metadata: snapshot.metadata, dataBytes: snapshot.data.byteLength, dataCrc: crc };
    this.snapData = snapshot.data.byteLength <= this.ctx.options.snapshotCacheBytesMax ? snapshot.data : undefined;
    this.snapDataLoading = false;
  }

  private appendEntries(plan: GroupPlan): void {
    const f = plan.entries[0]!.index;
    if (plan.truncatedFrom !== undefined && plan.snapshot === undefined) {
      this.runs.truncateFrom(f);
      this.tail.truncateFrom(f);
      this.ctx.loaded.truncateFrom(this.group, f);
      this.misses = this.misses.filter((m) => m.lo < f);
      this.epochCount++;
    }
    for (const r of plan.runPuts) this.runs.push(r);
    if (this.tail.length > 0 && this.tail.hi !== f) this.tail.clear();
    for (const e of plan.entries) this.tail.push(e);
    this.tail.trimToBytes(this.ctx.options.cacheBytesPerGroup);
    this.last = plan.lastIndex;
  }

  private sourceFor(i: LogIndex): EntrySource | undefined {
    if (this.tail.length > 0 && i >= this.tail.lo) return this.tail;
    return this.ctx.loaded.find(this.group, i);
  }

  private recordMiss(lo: LogIndex, hi: LogIndex): void {
    const same = this.misses.find((m) => m.lo === lo);
    if (same !== undefined) same.hi = Math.max(same.hi, hi);
    else if (this.misses.length < missesPerGroupMax) this.misses.push({ lo, hi });
  }

  private checkUsable(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
