/**
 * One partition replica: the state machine of the partition's Raft group. The partition's
 * message log IS its Raft log (no second copy): each committed record batch entry gets the next
 * offsets, and the partition keeps only an in-memory table from batch to Raft index to find
 * records by offset. Raft indexes and client offsets are different types, translated here.
 *
 *   raft index   2(no-op)  3(batch of 2)  4(batch of 3)  5(conf)  6(batch of 1)
 *   base offset     -           0              2            -          5
 *   high watermark after applying 6: 6
 */
import type { GroupId, LogIndex, Offset } from "../lib/ids.js";
import { decodeConfChange, nextConfState, type ConfState, type Entry, type Snapshot } from "../raft/index.js";
import type { GroupStateMachine } from "../multiraft/multiraft.js";
import { KIND_RECORDS, decodeBatch, readBatchHeader, type StoredRecord } from "./record-batch.js";

/** The state kept in a partition snapshot. */
interface PartitionSnapshot {
  readonly nextOffset: number;
}

/** Reads committed entries of the group from storage (async; bypasses the Raft core's cache). */
export type EntryReader = (lo: LogIndex, hi: LogIndex, maxBytes: number) => Promise<Entry[]>;

export class PartitionState implements GroupStateMachine {
  /** Offset of the first retained record. */
  logStartOffset: Offset = 0;
  /** The high watermark: the offset the next committed record gets. Everything below is committed. */
  nextOffset: Offset = 0;
  /** Highest applied Raft index. */
  appliedIndex: LogIndex = 0;
  // Parallel arrays, ascending: batch entries' Raft index, base offset and broker timestamp.
  private readonly batchIndexes: LogIndex[] = [];
  private readonly batchOffsets: Offset[] = [];
  private readonly batchTimestamps: number[] = [];
  /** Membership changes since the last snapshot, to know the membership at any retained index. */
  private confHistory: { index: LogIndex; conf: ConfState }[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly group: GroupId) {}

  apply(entries: readonly Entry[]): void {
    for (const e of entries) {
      this.appliedIndex = e.index;
      if (e.type === "conf") {
        this.applyConfEntry(e);
        continue;
      }
      if (e.data.byteLength === 0) continue;
      const header = readBatchHeader(e.data);
      if (header === undefined || header.kind !== KIND_RECORDS) continue;
      this.batchIndexes.push(e.index);
      this.batchOffsets.push(this.nextOffset);
      this.batchTimestamps.push(header.brokerTimestampMs);
      this.nextOffset += header.count;
    }
    if (this.waiters.length > 0) {
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w();
    }
  }

  restore(snapshot: Snapshot): void {
    const state = decodeSnapshot(snapshot.metadata.index, snapshot.data);
    this.nextOffset = state.nextOffset;
    this.logStartOffset = state.nextOffset;
    this.appliedIndex = snapshot.metadata.index;
    this.batchIndexes.length = 0;
    this.batchOffsets.length = 0;
    this.batchTimestamps.length = 0;
    this.confHistory = [{ index: snapshot.metadata.index, conf: snapshot.metadata.confState }];
  }

  snapshotData(): Uint8Array {
    return encodeSnapshot({ nextOffset: this.nextOffset });
  }

  private applyConfEntry(e: Entry): void {
    const current = this.confHistory[this.confHistory.length - 1];
    if (current === undefined) return; // restore() always runs first; nothing to track without a base
    const next = nextConfState(current.conf, decodeConfChange(e.data));
    if (next !== undefined) this.confHistory.push({ index: e.index, conf: next });
  }

  /**
   * The last batch index whose records are all older than `cutoffMs` (broker time): where
   * retention may compact to. Undefined if no batch is that old.
   */
  retentionPoint(cutoffMs: number): LogIndex | undefined {
    // Timestamps only grow within one leadership, but may step back across leaders: scan, bounded by the table.
    let last = -1;
    for (let i = 0; i < this.batchTimestamps.length && this.batchTimestamps[i]! < cutoffMs; i++) last = i;
    return last < 0 ? undefined : this.batchIndexes[last];
  }

  /** The snapshot of this partition as of applied index `index`: its membership then and its data. */
  snapshotAt(index: LogIndex): { confState: ConfState; data: Uint8Array } {
    let conf: ConfState | undefined;
    for (const h of this.confHistory) if (h.index <= index) conf = h.conf;
    if (conf === undefined) throw new Error(`partition ${this.group}: no membership known at index ${index}`);
    // The offset at `index` is the base offset of the first batch after it.
    const after = upperBound(this.batchIndexes, index);
    const nextOffset = after < this.batchOffsets.length ? this.batchOffsets[after]! : this.nextOffset;
    return { confState: conf, data: encodeSnapshot({ nextOffset }) };
  }

  /** Forgets batches at or below a compaction point (retention): their records are gone. */
  compactedTo(index: LogIndex): void {
    let drop = 0;
    while (drop < this.batchIndexes.length && this.batchIndexes[drop]! <= index) drop++;
    this.batchIndexes.splice(0, drop);
    this.batchOffsets.splice(0, drop);
    this.batchTimestamps.splice(0, drop);
    this.logStartOffset = this.batchOffsets[0] ?? this.nextOffset;
    // Keep the membership in force at `index` as the new base.
    let base = 0;
    for (let i = 0; i < this.confHistory.length; i++) if (this.confHistory[i]!.index <= index) base = i;
    this.confHistory = this.confHistory.slice(base);
  }

  /** The base offset of the batch stored at Raft index `index`, if that entry is an applied batch. */
  baseOffsetAt(index: LogIndex): Offset | undefined {
    const i = lowerBound(this.batchIndexes, index);
    return this.batchIndexes[i] === index ? this.batchOffsets[i] : undefined;
  }

  /** The Raft index of the batch that holds `offset`, or undefined if none does (yet). */
  indexOfOffset(offset: Offset): LogIndex | undefined {
    if (offset < this.logStartOffset || offset >= this.nextOffset) return undefined;
    // The last batch whose base offset is <= offset.
    const i = upperBound(this.batchOffsets, offset) - 1;
    return i >= 0 ? this.batchIndexes[i] : undefined;
  }

  /**
   * Reads committed records from `offset`, at most about `maxBytes` of record bodies (at least one
   * record if any is available).
   */
  async read(offset: Offset, maxBytes: number, readEntries: EntryReader): Promise<StoredRecord[]> {
    const start = this.indexOfOffset(offset);
    if (start === undefined) return [];
    const entries = await readEntries(start, this.appliedIndex + 1, maxBytes);
    const out: StoredRecord[] = [];
    let bytes = 0;
    for (const e of entries) {
      const base = this.baseOffsetAt(e.index);
      if (base === undefined) continue; // no-ops, conf changes, or compacted meanwhile
      for (const r of decodeBatch(e.data, base)) {
        if (r.offset < offset) continue;
        bytes += r.body.byteLength + r.key.byteLength;
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(r);
      }
    }
    return out;
  }

  /** Resolves when a new entry is applied, or after `timeoutMs` via the caller's timer. */
  waitForApply(): { promise: Promise<void>; cancel(): void } {
    let cancel = (): void => {};
    const promise = new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      cancel = () => {
        this.waiters = this.waiters.filter((w) => w !== resolve);
        resolve();
      };
    });
    return { promise, cancel };
  }
}

function encodeSnapshot(state: PartitionSnapshot): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(state));
}

function decodeSnapshot(index: LogIndex, data: Uint8Array): PartitionSnapshot {
  if (data.byteLength === 0) return { nextOffset: 0 }; // the membership snapshot of a new group
  const parsed = JSON.parse(new TextDecoder().decode(data)) as Partial<PartitionSnapshot>;
  if (typeof parsed.nextOffset !== "number" || !Number.isSafeInteger(parsed.nextOffset) || parsed.nextOffset < 0) {
    throw new Error(`corrupt partition snapshot at index ${index}: ${JSON.stringify(parsed)}`);
  }
  return { nextOffset: parsed.nextOffset };
}

/** First position whose value is >= x. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First position whose value is > x. */
function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
