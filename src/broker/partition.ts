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
import type { Entry, Snapshot } from "../raft/index.js";
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
  // Parallel arrays, ascending: batch entries' Raft index and base offset.
  private readonly batchIndexes: LogIndex[] = [];
  private readonly batchOffsets: Offset[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly group: GroupId) {}

  apply(entries: readonly Entry[]): void {
    for (const e of entries) {
      this.appliedIndex = e.index;
      if (e.type !== "normal" || e.data.byteLength === 0) continue;
      const header = readBatchHeader(e.data);
      if (header === undefined || header.kind !== KIND_RECORDS) continue;
      this.batchIndexes.push(e.index);
      this.batchOffsets.push(this.nextOffset);
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
  }

  snapshotData(): Uint8Array {
    const state: PartitionSnapshot = { nextOffset: this.nextOffset };
    return new TextEncoder().encode(JSON.stringify(state));
  }

  /** Forgets batches at or below a compaction point (retention). */
  compactedTo(index: LogIndex): void {
    let drop = 0;
    while (drop < this.batchIndexes.length && this.batchIndexes[drop]! <= index) drop++;
    if (drop === 0) return;
    this.batchIndexes.splice(0, drop);
    this.batchOffsets.splice(0, drop);
    this.logStartOffset = this.batchOffsets[0] ?? this.nextOffset;
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
